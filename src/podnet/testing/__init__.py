"""podnet.testing."""
