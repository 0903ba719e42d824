"""Test tiers, and the safety net every kernel and e2e test runs under.

Tiers are folders: tests/unit and tests/meta run anywhere; tests/kernel and tests/e2e
need root (and kubectl for e2e). Locally a tier that cannot run is skipped with its
reason; with PODNET_REQUIRE_ALL_TIERS=1 (set by scripts/test.sh in CI) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every range podnet uses; while kernel/e2e tests run, each has a host route of
# last resort so nothing addressed to it can leave through the default route.
CLUSTER_RANGES = ("10.244.0.0/16", "10.96.0.0/12", "10.250.0.0/24", "10.251.0.0/24")
GUARD_METRIC = "4242"


def _tier(item: pytest.Item) -> str:
    parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
    return parts[0] if parts else "unit"


def _missing_for(tier: str) -> str:
    if tier not in ("kernel", "e2e"):
        return ""
    if os.geteuid() != 0:
        return f"the {tier} tier needs root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the {tier} tier needs `{tool}` (run scripts/setup.sh)"
    if tier == "e2e" and shutil.which("kubectl") is None:
        return "the e2e tier needs the kubectl binary on PATH"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    strict = os.environ.get("PODNET_REQUIRE_ALL_TIERS") == "1"
    for item in items:
        tier = _tier(item)
        if tier in ("kernel", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))
        why = _missing_for(tier)
        if why and not strict:
            item.add_marker(pytest.mark.skip(reason=why))
        elif why:
            item.add_marker(pytest.mark.usefixtures("_tier_unavailable"))


@pytest.fixture
def _tier_unavailable(request: pytest.FixtureRequest) -> None:
    pytest.fail("tier cannot run here: " + _missing_for(_tier(request.node)), pytrace=False)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def install_guards(metric: str = GUARD_METRIC) -> list[str]:
    added = []
    for cidr in CLUSTER_RANGES:
        r = _ip("route", "add", "unreachable", cidr, "metric", metric, check=False)
        if r.returncode == 0:
            added.append(cidr)
        elif "File exists" not in r.stderr:
            raise RuntimeError(f"cannot install guard route for {cidr}: {r.stderr}")
    return added


def remove_guards(added: list[str], metric: str = GUARD_METRIC) -> None:
    for cidr in added:
        _ip("route", "del", "unreachable", cidr, "metric", metric, check=False)


@pytest.fixture(scope="session")
def cluster_route_guards() -> Iterator[list[str]]:
    """Belt and braces (DESIGN.md, Safety): fallback `unreachable` routes for every
    cluster range for the whole run, removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("route guards need root")
    added = install_guards()
    try:
        yield list(CLUSTER_RANGES)
    finally:
        remove_guards(added)


def assert_not_via_default_route(ip: str) -> None:
    """Before sending from the host: the target must not route via the default gateway."""
    r = _ip("route", "get", ip, check=False)
    out = r.stdout + r.stderr
    default = _ip("route", "show", "default", check=False).stdout.split()
    gateway = default[default.index("via") + 1] if "via" in default else None
    if gateway and f"via {gateway}" in out:
        raise AssertionError(f"{ip} would leave through the default route: {out.strip()}")
