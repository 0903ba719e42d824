"""`ip` batch lines, exactly as one would type them after `ip`."""

from __future__ import annotations

import pytest

from podnet.kernel import links


def test_veth_pair_can_be_born_in_namespaces() -> None:
    assert links.veth_pair("vp0a1b2c3d4e", "eth0", peer_netns="podnet-c-0123456789ab") == (
        "link add vp0a1b2c3d4e type veth peer name eth0 netns podnet-c-0123456789ab"
    )
    assert links.veth_pair("a", "b", netns="n1", peer_netns="n2") == (
        "link add a netns n1 type veth peer name b netns n2"
    )
    assert links.veth_pair("a", "b") == "link add a type veth peer name b"
    assert links.veth_pair("a", "b", peer_netns="n", queues=1) == (
        "link add a numtxqueues 1 numrxqueues 1 type veth peer name b numtxqueues 1 numrxqueues 1"
        " netns n"
    )


def test_link_lines() -> None:
    assert links.link_up("eth0") == "link set dev eth0 up"
    assert links.link_del("pn-c-0") == "link del dev pn-c-0"
    assert links.link_rename("veth1", "eth0") == "link set dev veth1 name eth0"
    assert links.link_set_netns("veth1", "podnet-c-n") == "link set dev veth1 netns podnet-c-n"
    assert links.netns_add("podnet-c-n") == "netns add podnet-c-n"
    assert links.netns_del("podnet-c-n") == "netns del podnet-c-n"


def test_addresses() -> None:
    assert links.addr_add("eth0", "10.244.0.5/32") == "address add 10.244.0.5/32 dev eth0"
    assert links.addr_add("pn-c-0", "10.250.0.1/24", replace=True) == (
        "address replace 10.250.0.1/24 dev pn-c-0"
    )


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        (
            dict(action="add", dst="default", via="169.254.1.1", dev="eth0", onlink=True),
            "route add default via 169.254.1.1 dev eth0 onlink",
        ),
        (
            dict(action="replace", dst="10.244.0.5/32", dev="vp0123456789"),
            "route replace 10.244.0.5/32 dev vp0123456789",
        ),
        (
            dict(action="replace", dst="10.244.3.0/24", via="10.250.0.5", dev="pn-c-3"),
            "route replace 10.244.3.0/24 via 10.250.0.5 dev pn-c-3",
        ),
        (
            dict(action="add", dst="10.244.0.0/16", kind="unreachable", metric=4242),
            "route add unreachable 10.244.0.0/16 metric 4242",
        ),
        (dict(action="del", dst="10.96.0.0/12", dev="pn-c-0"), "route del 10.96.0.0/12 dev pn-c-0"),
    ],
)
def test_routes(kwargs: dict[str, object], line: str) -> None:
    assert links.route(**kwargs) == line  # type: ignore[arg-type]


def test_neighbours_and_proxy_arp() -> None:
    assert links.neigh_proxy_add("169.254.1.1", "vp0") == "neigh add proxy 169.254.1.1 dev vp0"
    assert links.neigh_permanent("169.254.1.1", "EE:EE:EE:EE:EE:EE", "eth0") == (
        "neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent"
    )
    assert links.proxy_arp_key("vp0a") == "net.ipv4.conf.vp0a.proxy_arp"
    assert links.proxy_arp_key("eth0.5") == "net/ipv4/conf/eth0.5/proxy_arp"


@pytest.mark.parametrize("bad", ["", "a" * 16, "two words", "eth0\nlink del lo", "a/b", "-x"])
def test_bad_interface_names_never_become_other_commands(bad: str) -> None:
    with pytest.raises(ValueError):
        links.link_up(bad)


def test_longest_interface_name_is_accepted() -> None:
    assert links.link_up("a" * 15) == f"link set dev {'a' * 15} up"


@pytest.mark.parametrize(
    "call",
    [
        lambda: links.route("add", "10.244.0.1/16"),  # host bits set: a typo, not a net
        lambda: links.route("add", "default", via="1.1.1.1", onlink=True),  # onlink needs dev
        lambda: links.route("add", "10.0.0.0/8", kind="nat"),
        lambda: links.addr_add("eth0", "10.0.0.300/24"),
        lambda: links.netns_add("bad name"),
        lambda: links.neigh_permanent("169.254.1.1", "not-a-mac", "eth0"),
    ],
)
def test_bad_values_raise(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
