"""podnet.util."""
