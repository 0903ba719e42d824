"""The node and pod network plans, read as the commands a person would type."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from podnet.agent.network import (
    NodeNetwork,
    Step,
    plan_node,
    plan_pod,
    plan_pod_delete,
    plan_teardown,
    pod_netns_of,
    render,
)

NET = NodeNetwork("podnet", "node-0", 0)
UID = "6c0f4d3e-1b2a-4c5d-8e9f-0a1b2c3d4e5f"
VP = NET.pod_veth(UID)


def test_names_and_addresses_of_the_first_node() -> None:
    assert NET.netns == "podnet-podnet-node-0"
    assert NET.host_link == "pn-podnet-0"
    assert (str(NET.host_cidr), str(NET.node_cidr)) == ("10.250.0.1/24", "10.250.0.2/24")
    assert (NET.host_ip, NET.node_ip) == (IPv4Address("10.250.0.1"), IPv4Address("10.250.0.2"))
    assert NET.pod_cidr == IPv4Network("10.244.0.0/24")
    assert NET.pod_netns(UID) == "podnet-podnet-6c0f4d3e-1b2"
    assert VP.startswith("vp") and len(VP) == 12


def test_node_n_gets_its_own_cidr_and_address() -> None:
    net = NodeNetwork("podnet", "node-3", 3)
    assert (str(net.node_cidr), str(net.pod_cidr)) == ("10.250.0.5/24", "10.244.3.0/24")


def test_long_cluster_names_get_a_hashed_host_link_within_ifnamsiz() -> None:
    a = NodeNetwork("a-rather-long-cluster-name", "node-0", 0)
    b = NodeNetwork("a-rather-long-cluster-name", "node-1", 1)
    assert len(a.host_link) <= 15 and a.host_link.startswith("pn-")
    assert a.host_link != b.host_link
    assert a.host_link == NodeNetwork("a-rather-long-cluster-name", "node-0", 0).host_link


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(cluster="Bad_Name", node_name="n", node_index=0),
        dict(cluster="c", node_name="n", node_index=256),
        dict(cluster="c", node_name="n", node_index=253),  # 10.250.0.255 is broadcast
        dict(cluster="c", node_name="n", node_index=1, node_network="10.250.0.128/30"),
    ],
)
def test_impossible_layouts_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NodeNetwork(**kwargs)  # type: ignore[arg-type]


def test_uids_must_look_like_uids() -> None:
    for bad in ("short", "../../etc", "0123456789AB"):
        with pytest.raises(ValueError, match="not a Kubernetes UID"):
            NET.pod_netns(bad)


def test_plan_node_from_scratch() -> None:
    assert render(plan_node(NET)) == [
        "ip netns add podnet-podnet-node-0",
        "ip link add pn-podnet-0 numtxqueues 1 numrxqueues 1 type veth peer name eth0 "
        "numtxqueues 1 numrxqueues 1 netns podnet-podnet-node-0",
        "ip address replace 10.250.0.1/24 dev pn-podnet-0",
        "ip link set dev pn-podnet-0 up",
        "ip route replace 10.244.0.0/24 via 10.250.0.2 dev pn-podnet-0",
        "ip route replace unreachable 10.244.0.0/16 metric 8008",
        "ip route replace unreachable 10.96.0.0/12 metric 8008",
        "ip route replace unreachable 10.251.0.0/24 metric 8008",
        "ip -n podnet-podnet-node-0 link set dev lo up",
        "ip -n podnet-podnet-node-0 address replace 169.254.1.1/32 dev lo",
        "ip -n podnet-podnet-node-0 address replace 10.250.0.2/24 dev eth0",
        "ip -n podnet-podnet-node-0 link set dev eth0 up",
        "ip netns exec podnet-podnet-node-0 sysctl -w net.ipv4.ip_forward=1",
    ]


def test_plan_node_never_adds_a_default_route_anywhere() -> None:
    assert not any("default" in s.command for s in plan_node(NET))


def test_plan_node_on_an_existing_node_only_reasserts() -> None:
    again = plan_node(NET, have_netns=True, have_link=True)
    assert not any(" add " in f" {s.command} " for s in again)
    assert all(s in plan_node(NET) for s in again)


def test_plan_node_routes_extra_ranges_to_the_node() -> None:
    net = NodeNetwork("podnet", "node-0", 0, extra_host_routes=("10.96.0.0/12",))
    assert "ip route replace 10.96.0.0/12 via 10.250.0.2 dev pn-podnet-0" in render(plan_node(net))


def test_plan_pod() -> None:
    assert render(plan_pod(NET, UID, "10.244.0.7")) == [
        "ip netns add podnet-podnet-6c0f4d3e-1b2",
        f"ip -n podnet-podnet-node-0 link add {VP} numtxqueues 1 numrxqueues 1 type veth "
        "peer name eth0 numtxqueues 1 numrxqueues 1 netns podnet-podnet-6c0f4d3e-1b2",
        f"ip -n podnet-podnet-node-0 link set dev {VP} up",
        f"ip -n podnet-podnet-node-0 route replace 10.244.0.7/32 dev {VP}",
        "ip -n podnet-podnet-6c0f4d3e-1b2 link set dev lo up",
        "ip -n podnet-podnet-6c0f4d3e-1b2 address add 10.244.0.7/32 dev eth0",
        "ip -n podnet-podnet-6c0f4d3e-1b2 link set dev eth0 up",
        "ip -n podnet-podnet-6c0f4d3e-1b2 route add default via 169.254.1.1 dev eth0 onlink",
    ]


def test_plan_pod_is_three_processes() -> None:
    # Consecutive steps in one namespace share one `ip -batch`: host, node, pod.
    plan = plan_pod(NET, UID, "10.244.0.7")
    assert [s.netns for i, s in enumerate(plan) if i == 0 or plan[i - 1].netns != s.netns] == [
        None,
        NET.netns,
        NET.pod_netns(UID),
    ]


def test_plan_pod_adopting_an_existing_sandbox_only_replaces() -> None:
    assert render(plan_pod(NET, UID, "10.244.0.7", existing=True)) == [
        f"ip -n podnet-podnet-node-0 link set dev {VP} up",
        f"ip -n podnet-podnet-node-0 route replace 10.244.0.7/32 dev {VP}",
        "ip -n podnet-podnet-6c0f4d3e-1b2 link set dev lo up",
        "ip -n podnet-podnet-6c0f4d3e-1b2 address replace 10.244.0.7/32 dev eth0",
        "ip -n podnet-podnet-6c0f4d3e-1b2 link set dev eth0 up",
        "ip -n podnet-podnet-6c0f4d3e-1b2 route replace default via 169.254.1.1 dev eth0 onlink",
    ]


def test_plan_pod_refuses_an_ip_outside_the_node_cidr() -> None:
    with pytest.raises(ValueError, match=r"outside the node's podCIDR 10\.244\.0\.0/24"):
        plan_pod(NET, UID, "10.244.1.7")


def test_plan_pod_delete_detaches_and_drops_the_name() -> None:
    assert render(plan_pod_delete(NET, UID)) == [
        f"ip -n podnet-podnet-node-0 link del dev {VP}",
        "ip netns del podnet-podnet-6c0f4d3e-1b2",
    ]


def test_teardown_removes_only_what_exists_and_is_ours() -> None:
    existing = [
        "podnet-podnet-node-0",
        "podnet-podnet-6c0f4d3e-1b2",
        "podnet-podnet-b-0123456789ab",  # cluster "podnet-b": not ours
        "podnet-other-6c0f4d3e-1b2",
        "unrelated",
    ]
    assert render(plan_teardown(NET, existing_netns=existing, have_link=True)) == [
        "ip link del dev pn-podnet-0",
        "ip netns del podnet-podnet-node-0",
        "ip netns del podnet-podnet-6c0f4d3e-1b2",
    ]
    assert plan_teardown(NET, existing_netns=[], have_link=False) == []


def test_pod_netns_of_maps_names_to_uid_prefixes() -> None:
    assert pod_netns_of(NET, ["podnet-podnet-node-0", "podnet-podnet-6c0f4d3e-1b2"]) == {
        "podnet-podnet-6c0f4d3e-1b2": "6c0f4d3e-1b2"
    }


def test_render_of_host_and_namespace_steps() -> None:
    assert render([Step(None, "link set dev lo up"), Step("ns", "link set dev lo up")]) == [
        "ip link set dev lo up",
        "ip -n ns link set dev lo up",
    ]
