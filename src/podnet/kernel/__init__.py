"""podnet.kernel: thin typed wrappers over Linux networking (netns, links, routes, sysctls)."""
