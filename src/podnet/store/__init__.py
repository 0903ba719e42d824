"""podnet.store."""
