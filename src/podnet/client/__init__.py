"""podnet.client."""
