"""Pod IPs: one per pod, never two pods on one IP, and the same answers after a restart."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from podnet.agent.ipam import Ipam, IpamError, Pool, PoolExhausted

CIDR = "10.244.0.0/24"


def ips(*last_octets: int) -> list[IPv4Address]:
    return [IPv4Address(f"10.244.0.{n}") for n in last_octets]


def test_first_pods_get_2_3_4_skipping_network_and_gateway() -> None:
    pool = Pool(CIDR)
    assert [pool.allocate(u) for u in ("a", "b", "c")] == ips(2, 3, 4)


def test_allocate_is_idempotent_per_pod() -> None:
    pool = Pool(CIDR)
    first = pool.allocate("a")
    pool.allocate("b")
    assert pool.allocate("a") == first
    assert pool.in_use() == dict(zip(["a", "b"], ips(2, 3), strict=True))


def test_freed_ip_is_not_reused_at_once_next_fit() -> None:
    pool = Pool(CIDR)
    for u in ("a", "b", "c"):
        pool.allocate(u)
    assert pool.release("b") == IPv4Address("10.244.0.3")
    assert pool.allocate("d") == IPv4Address("10.244.0.5")  # not .3 straight away
    assert pool.release("b") is None  # twice is harmless


def test_full_pool_says_so_then_wraps_to_freed_addresses() -> None:
    pool = Pool(CIDR)
    assert pool.capacity == 253  # .2 … .254
    for i in range(253):
        pool.allocate(f"pod-{i}")
    assert pool.in_use()["pod-252"] == IPv4Address("10.244.0.254")  # broadcast never used
    with pytest.raises(PoolExhausted, match=r"no free pod IP in 10.244.0.0/24: all 253"):
        pool.allocate("one-too-many")
    pool.release("pod-7")
    assert pool.allocate("late") == IPv4Address("10.244.0.9")


def test_claim_adopts_an_address_and_refuses_conflicts() -> None:
    pool = Pool(CIDR)
    assert pool.claim("a", "10.244.0.50") == IPv4Address("10.244.0.50")
    assert pool.claim("a", "10.244.0.50") == IPv4Address("10.244.0.50")
    with pytest.raises(IpamError, match="already allocated to pod a"):
        pool.claim("b", "10.244.0.50")
    with pytest.raises(IpamError, match=r"already has 10\.244\.0\.50"):
        pool.claim("a", "10.244.0.51")
    for bad in ("10.244.0.0", "10.244.0.1", "10.244.0.255", "10.244.1.7"):
        with pytest.raises(IpamError, match="not a usable pod IP"):
            pool.claim("c", bad)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state" / "ipam.json"
    ipam = Ipam(CIDR, state)
    a, b = ipam.allocate("a"), ipam.allocate("b")
    ipam.release("a")
    again = Ipam(CIDR, state)
    assert again.in_use() == {"b": b}
    assert again.allocate("b") == b
    assert again.allocate("c") == IPv4Address("10.244.0.4")  # next-fit position kept too
    assert a not in again.in_use().values()
    assert [p.name for p in state.parent.iterdir()] == ["ipam.json"]  # no temp files left


def test_state_file_is_plain_json(tmp_path: Path) -> None:
    state = tmp_path / "ipam.json"
    Ipam(CIDR, state).allocate("0f1e2d3c-aaaa-bbbb-cccc-000000000000")
    assert json.loads(state.read_text()) == {
        "version": 1,
        "cidr": CIDR,
        "last": "10.244.0.2",
        "allocations": {"0f1e2d3c-aaaa-bbbb-cccc-000000000000": "10.244.0.2"},
    }


def test_retain_releases_pods_that_are_gone(tmp_path: Path) -> None:
    ipam = Ipam(CIDR, tmp_path / "ipam.json")
    for u in ("a", "b", "c"):
        ipam.allocate(u)
    assert ipam.retain(["b"]) == {"a": IPv4Address("10.244.0.2"), "c": IPv4Address("10.244.0.4")}
    assert Ipam(CIDR, tmp_path / "ipam.json").in_use() == {"b": IPv4Address("10.244.0.3")}


def test_changed_pod_cidr_or_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "ipam.json"
    Ipam(CIDR, state).allocate("a")
    with pytest.raises(IpamError, match=r"is for 10.244.0.0/24, not 10.244.1.0/24"):
        Ipam("10.244.1.0/24", state)
    state.write_text("{not json")
    with pytest.raises(IpamError, match="cannot read IPAM state"):
        Ipam(CIDR, state)


def test_without_state_file_nothing_is_written(tmp_path: Path) -> None:
    ipam = Ipam(CIDR, None)
    assert ipam.allocate("a") == IPv4Address("10.244.0.2")
    assert ipam.ip_of("a") == IPv4Address("10.244.0.2") and ipam.ip_of("b") is None


def test_tiny_cidr_is_refused() -> None:
    with pytest.raises(IpamError, match="too small"):
        Pool("10.244.0.0/31")
    assert Pool("10.244.0.0/29").capacity == 5
