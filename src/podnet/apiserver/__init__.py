"""podnet.apiserver."""
