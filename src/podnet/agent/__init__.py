"""podnet.agent: the node: pod sandboxes, containers as processes, status, streams."""
