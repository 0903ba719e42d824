"""podnet.cli."""
