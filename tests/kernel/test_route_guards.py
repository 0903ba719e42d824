"""The suite's safety net itself, checked against the real kernel routing table."""

from __future__ import annotations

import subprocess

from tests.conftest import (
    CLUSTER_RANGES,
    assert_not_via_default_route,
    install_guards,
    remove_guards,
)


def route_get(ip: str) -> str:
    r = subprocess.run(["ip", "route", "get", ip], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


def test_every_cluster_range_is_unreachable_under_guards(cluster_route_guards: list[str]) -> None:
    for probe in ("10.96.0.1", "10.244.0.5", "10.244.201.5", "10.250.0.77", "10.251.0.9"):
        out = route_get(probe)
        # Either a guard answers, or a running podnet cluster's own node link carries it
        # (the e2e cluster may be up while this runs); never the default route.
        guarded = "unreachable" in out or "No route" in out or "Network is unreachable" in out
        assert guarded or " dev pn-" in out, out
        assert_not_via_default_route(probe)
    # A pod range no node uses is always answered by the guard.
    out = route_get("10.244.201.5")
    assert "unreachable" in out or "No route" in out, out


def test_guards_are_removed_without_trace() -> None:
    before = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
    added = install_guards(metric="4343")
    try:
        assert added == list(CLUSTER_RANGES)
        table = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
        for cidr in CLUSTER_RANGES:
            assert f"unreachable {cidr} metric 4343" in table
    finally:
        remove_guards(added, metric="4343")
    after = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
    # Guards that existed before (the session's) stay; ours are gone.
    assert sorted(after.splitlines()) == sorted(before.splitlines())
    assert "metric 4343" not in after
