"""The rtnetlink side of pod plans: which `ip` lines it carries out, and the messages."""

from __future__ import annotations

import socket
import struct

import pytest

from podnet.kernel import links, rtnl


@pytest.mark.parametrize(("line", "op", "args", "replace"), [
    (links.netns_add("podnet-c-0123456789ab"), "netns-add", ("podnet-c-0123456789ab",), False),
    (links.netns_del("podnet-c-0123456789ab"), "netns-del", ("podnet-c-0123456789ab",), False),
    (links.veth_pair("pnv0123", "eth0", peer_netns="pod-ns"), "veth",
     ("pnv0123", "eth0", "pod-ns"), False),
    (links.veth_pair("a", "b"), "veth", ("a", "b"), False),
])
def test_the_pod_plan_lines_parse(line: str, op: str, args: tuple[str, ...],
                                  replace: bool) -> None:
    assert rtnl.parse(line) == rtnl.Line(op, args, replace)


@pytest.mark.parametrize(("line", "args", "queues"), [
    (links.veth_pair("pnv0123", "eth0", peer_netns="pod-ns", queues=1),
     ("pnv0123", "eth0", "pod-ns"), 1),
    (links.veth_pair("a", "b", queues=4), ("a", "b"), 4),
    (links.veth_pair("a", "b", peer_netns="n"), ("a", "b", "n"), 0),
])
def test_veth_lines_parse_with_their_queue_counts(line: str, args: tuple[str, ...],
                                                  queues: int) -> None:
    assert rtnl.parse(line) == rtnl.Line("veth", args, queues=queues)


@pytest.mark.parametrize(("line", "op", "args", "replace"), [
    (links.link_up("eth0"), "up", ("eth0",), False),
    (links.link_del("pnv0123"), "link-del", ("pnv0123",), False),
    (links.addr_add("eth0", "10.244.0.5/32"), "addr", ("10.244.0.5/32", "eth0"), False),
    (links.addr_add("eth0", "10.244.0.5/32", replace=True), "addr",
     ("10.244.0.5/32", "eth0"), True),
    (links.route("replace", "10.244.0.5/32", dev="pnv0123"), "route",
     ("10.244.0.5/32", "pnv0123", "", ""), True),
    (links.route("add", "default", via="169.254.1.1", dev="eth0", onlink=True), "route",
     ("default", "eth0", "169.254.1.1", "onlink"), False),
])
def test_the_pod_plan_link_address_and_route_lines_parse(line: str, op: str, args: tuple[str, ...],
                                  replace: bool) -> None:
    assert rtnl.parse(line) == rtnl.Line(op, args, replace)


@pytest.mark.parametrize("line", [
    links.route("add", "10.244.0.0/24", kind="unreachable", metric=4242),
    links.route("add", "10.96.0.0/12", via="10.250.0.2", metric=10),
    links.veth_pair("a", "b", netns="x", peer_netns="y"),
    links.veth_pair("a", "b", netns="x", queues=1),
    "link add a numtxqueues 1 numrxqueues 1 type veth peer name b",
    "link add a numtxqueues 1 numrxqueues 2 type veth peer name b numtxqueues 1 numrxqueues 2",
    "link add a numtxqueues 1 numrxqueues 1 type veth peer name b numtxqueues 2 numrxqueues 2",
    "link add a type dummy",
    "link add a type veth peer name",
    links.neigh_permanent("10.0.0.1", "aa:bb:cc:dd:ee:ff", "eth0"),
    links.link_rename("a", "b"),
    "route del 10.0.0.0/8",
])
def test_other_lines_are_left_to_ip(line: str) -> None:
    assert rtnl.parse(line) is None
    assert not rtnl.supported([links.link_up("lo"), line])


def _attrs(data: bytes) -> dict[int, bytes]:
    out = {}
    while data:
        length, kind = struct.unpack_from("=HH", data)
        out[kind] = data[4:length]
        data = data[(length + 3) & ~3:]
    return out


def test_attributes_are_padded_to_four_bytes() -> None:
    assert rtnl.attr(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"
    assert len(rtnl.attr(1, b"\x01\x02\x03\x04")) == 8


def test_a_route_through_the_link_local_gateway() -> None:
    body = rtnl.route_body("default", 2, "169.254.1.1", onlink=True)
    family, dst_len, _, _, table, proto, scope, rtype, flags = struct.unpack_from("=BBBBBBBBI",
                                                                                 body)
    assert (family, dst_len, table, proto, scope, rtype) == (
        socket.AF_INET, 0, rtnl.RT_TABLE_MAIN, rtnl.RTPROT_BOOT, rtnl.RT_SCOPE_UNIVERSE,
        rtnl.RTN_UNICAST)
    assert flags == rtnl.RTNH_F_ONLINK
    attrs = _attrs(body[12:])
    assert attrs == {rtnl.RTA_GATEWAY: bytes([169, 254, 1, 1]),
                     rtnl.RTA_OIF: struct.pack("=i", 2)}


def test_a_host_route_to_a_pod_is_scope_link() -> None:
    body = rtnl.route_body("10.244.0.5/32", 7)
    _, dst_len, _, _, _, _, scope, _, flags = struct.unpack_from("=BBBBBBBBI", body)
    assert (dst_len, scope, flags) == (32, rtnl.RT_SCOPE_LINK, 0)
    assert _attrs(body[12:])[rtnl.RTA_DST] == bytes([10, 244, 0, 5])


def test_a_veth_whose_peer_is_born_in_the_pod_namespace() -> None:
    body = rtnl.veth_body("pnv0123", "eth0", 9)
    attrs = _attrs(body[16:])
    assert attrs[rtnl.IFLA_IFNAME] == b"pnv0123\0"
    info = _attrs(attrs[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth\0"
    peer = _attrs(_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER][16:])
    assert peer == {rtnl.IFLA_IFNAME: b"eth0\0", rtnl.IFLA_NET_NS_FD: struct.pack("=I", 9)}


def test_a_veth_with_one_queue_asks_it_for_both_ends() -> None:
    body = rtnl.veth_body("pnv0123", "eth0", None, queues=1)
    one = struct.pack("=I", 1)
    attrs = _attrs(body[16:])
    assert (attrs[rtnl.IFLA_NUM_TX_QUEUES], attrs[rtnl.IFLA_NUM_RX_QUEUES]) == (one, one)
    info = _attrs(attrs[rtnl.IFLA_LINKINFO])
    peer = _attrs(_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER][16:])
    assert peer == {rtnl.IFLA_IFNAME: b"eth0\0", rtnl.IFLA_NUM_TX_QUEUES: one,
                    rtnl.IFLA_NUM_RX_QUEUES: one}


def test_an_address_sets_local_and_address() -> None:
    body = rtnl.addr_body(2, "10.244.0.5/32")
    assert struct.unpack_from("=BBBBI", body) == (socket.AF_INET, 32, 0, 0, 2)
    assert _attrs(body[8:]) == {rtnl.IFA_LOCAL: bytes([10, 244, 0, 5]),
                                rtnl.IFA_ADDRESS: bytes([10, 244, 0, 5])}


def test_link_up_by_name_changes_only_the_up_flag() -> None:
    body = rtnl.link_up_body("eth0")
    _, _, index, flags, change = struct.unpack_from("=BxHiII", body)
    assert (index, flags, change) == (0, rtnl.IFF_UP, rtnl.IFF_UP)
