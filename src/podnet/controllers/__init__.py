"""podnet.controllers."""
