"""podnet: the Kubernetes service-networking system on one Linux machine."""
