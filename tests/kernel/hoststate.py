"""What the host looks like, for the kernel tests' "left exactly as before" checks."""

from __future__ import annotations

import subprocess


def sh(*argv: str) -> str:
    r = subprocess.run(argv, capture_output=True, text=True)
    return r.stdout + r.stderr


def snapshot() -> dict[str, list[str]]:
    """The things a podnet bug could leave behind on the host."""
    return {
        "netns": sorted(sh("ip", "netns", "list").splitlines()),
        "links": sorted(sh("ip", "-o", "link", "show").splitlines()),
        "routes": sorted(sh("ip", "route", "show", "table", "all").splitlines()),
        "routes6": sorted(sh("ip", "-6", "route", "show", "table", "all").splitlines()),
        "nft": sorted(sh("nft", "list", "tables").splitlines()),
        "mounts": sorted(line.split()[4] for line in open("/proc/self/mountinfo")),
    }
