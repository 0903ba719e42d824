"""rtnetlink from this process: the `ip` lines podnet's pod plans use, without an `ip`.

A pod sandbox used to cost three `ip -batch` processes (host, node, pod namespace): each
a fork of the agent plus an exec, several milliseconds of CPU, which made a 100-pod burst
spend most of its time forking. The same requests sent over a NETLINK_ROUTE socket cost
microseconds. The plans stay what they were — lines a person would type after `ip`
(links.py), which logs and docs show — and this module carries out the subset of them
that pod sandboxes need; `supported()` tells the caller when to fall back to `ip -batch`.

A netlink socket works on the namespace it was created in, so a socket for a pod's
namespace is made by a thread that has entered it (netns.in_netns). A new namespace is
made like `ip netns add` makes it: a thread unshares its network namespace, bind-mounts
it at /run/netns/<name> and returns home (ip has already made /run/netns a shared mount
when the node was set up; without that we fall back to ip).

Errors are KernelError with the kernel's words as `ip` prints them ("RTNETLINK answers:
File exists"), so callers keep testing `.exists` and `.not_found`.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from podnet.kernel import mounts, netnsdir
from podnet.kernel.netns import (
    CLONE_NEWNET,
    _retire_executors,
    _setns,
    in_netns,
    netns_path,
    open_netns_fd,
)
from podnet.kernel.run import KernelError

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 18, 28
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 31, 32
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1
RTNH_F_ONLINK = 4
IFF_UP = 1
MS_BIND = 4096

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_RTA = struct.Struct("=HH")


# ---- pure: messages ----------------------------------------------------------------


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to four bytes."""
    raw = _RTA.pack(_RTA.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _name(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def message(kind: int, flags: int, body: bytes, seq: int) -> bytes:
    return _HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body


def veth_body(name: str, peer: str, peer_netns_fd: int | None, queues: int = 0) -> bytes:
    """RTM_NEWLINK: `link add <name> [numtxqueues Q numrxqueues Q] type veth peer name
    <peer> [numtxqueues Q numrxqueues Q] [netns <fd>]`."""
    q = (attr(IFLA_NUM_TX_QUEUES, struct.pack("=I", queues))
         + attr(IFLA_NUM_RX_QUEUES, struct.pack("=I", queues))) if queues else b""
    peer_attrs = _name(peer) + q
    if peer_netns_fd is not None:
        peer_attrs += attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    info = attr(IFLA_INFO_KIND, b"veth\0") + attr(
        IFLA_INFO_DATA, attr(VETH_INFO_PEER, _IFINFO.pack(0, 0, 0, 0, 0) + peer_attrs))
    return (_IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _name(name) + q
            + attr(IFLA_LINKINFO, info))


def link_up_body(name: str) -> bytes:
    """RTM_NEWLINK on an existing link, by name: `link set dev <name> up`."""
    return _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + _name(name)


def link_by_name_body(name: str) -> bytes:
    """RTM_DELLINK / RTM_GETLINK by name."""
    return _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _name(name)


def addr_body(index: int, cidr: str) -> bytes:
    """RTM_NEWADDR: `address add <cidr> dev <index>` (IPv4)."""
    iface = ipaddress.IPv4Interface(cidr)
    packed = iface.ip.packed
    return (_IFADDR.pack(socket.AF_INET, iface.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))


def route_body(dst: str, oif: int, via: str | None = None, onlink: bool = False) -> bytes:
    """RTM_NEWROUTE: `route add <dst|default> [via <gw>] dev <oif> [onlink]` (IPv4, main
    table; without a gateway the route is scope link, as ip makes it)."""
    net = ipaddress.IPv4Network("0.0.0.0/0" if dst == "default" else dst)
    scope = RT_SCOPE_UNIVERSE if via else RT_SCOPE_LINK
    body = _RTMSG.pack(socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope,
                       RTN_UNICAST, RTNH_F_ONLINK if onlink else 0)
    if net.prefixlen:
        body += attr(RTA_DST, net.network_address.packed)
    if via:
        body += attr(RTA_GATEWAY, ipaddress.IPv4Address(via).packed)
    return body + attr(RTA_OIF, struct.pack("=i", oif))


@dataclass(frozen=True, slots=True)
class Line:
    """One `ip` line this module can carry out, parsed (see `parse`)."""

    op: str  # netns-add | veth | up | addr | route
    args: tuple[str, ...]
    replace: bool = False
    queues: int = 0  # veth: both ends' tx and rx queue count, 0 for the kernel's default


def parse(line: str) -> Line | None:
    """The structured form of a links.py line, or None when this module does not do it."""
    w = line.split()
    if w[:1] == ["netns"] and w[1:2] in (["add"], ["del"]) and len(w) == 3:
        return Line(f"netns-{w[1]}", (w[2],))
    if len(w) == 4 and w[:3] == ["link", "del", "dev"]:
        return Line("link-del", (w[3],))
    if w[:2] == ["link", "add"] and "type" in w:
        return _parse_veth(w)
    if len(w) == 5 and w[:3] == ["link", "set", "dev"] and w[4] == "up":
        return Line("up", (w[3],))
    if len(w) == 5 and w[0] == "address" and w[1] in ("add", "replace") and w[3] == "dev":
        return Line("addr", (w[2], w[4]), replace=w[1] == "replace")
    if w[:1] == ["route"] and len(w) >= 5 and w[1] in ("add", "replace"):
        rest = w[2:]
        dst, via, dev, onlink = rest[0], None, None, False
        i = 1
        while i < len(rest):
            if rest[i] == "via" and i + 1 < len(rest):
                via, i = rest[i + 1], i + 2
            elif rest[i] == "dev" and i + 1 < len(rest):
                dev, i = rest[i + 1], i + 2
            elif rest[i] == "onlink":
                onlink, i = True, i + 1
            else:
                return None  # a route type, a metric, ...: ip's job
        if dev is None or dst in ("unreachable", "blackhole", "prohibit", "unicast"):
            return None
        return Line("route", (dst, dev, via or "", "onlink" if onlink else ""),
                    replace=w[1] == "replace")
    return None


def _parse_veth(w: list[str]) -> Line | None:
    """`link add A [numtxqueues Q numrxqueues Q] type veth peer name B [numtxqueues Q
    numrxqueues Q] [netns N]`, the same queue count on both ends, or None."""
    t = w.index("type")
    head, tail = w[2:t], w[t:]
    if len(head) not in (1, 5) or tail[:4] != ["type", "veth", "peer", "name"] or len(
            tail) < 5:
        return None
    peer, rest = tail[4], tail[5:]
    netns: tuple[str, ...] = ()
    if rest[-2:-1] == ["netns"]:
        netns, rest = (rest[-1],), rest[:-2]
    if len(rest) not in (0, 4) or (len(head) == 5) != (len(rest) == 4):
        return None
    queues = 0
    if rest:
        both = [head[1:], rest]
        if any(q[0] != "numtxqueues" or q[2] != "numrxqueues" or q[1] != q[3]
               or not q[1].isdigit() for q in both) or head[2] != rest[1]:
            return None
        queues = int(rest[1])
    return Line("veth", (head[0], peer, *netns), queues=queues)


def supported(lines: Sequence[str]) -> bool:
    return all(parse(line) is not None for line in lines)


# ---- effectful: sockets and namespaces ----------------------------------------------


class Rtnl:
    """A NETLINK_ROUTE socket in one namespace; requests are acknowledged one by one."""

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        if netns is None:
            self.sock = self._open()
        else:
            self.sock = in_netns(netns, self._open)
        self.seq = 0
        # name → ifindex, for this socket's life (one group of lines). See `index`.
        self._indexes: dict[str, int] = {}

    @staticmethod
    def _open() -> socket.socket:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                          socket.NETLINK_ROUTE)
        s.bind((0, 0))
        return s

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes, what: str) -> bytes:
        """Send one request with NLM_F_ACK; return the reply (for GET) or b"" (an ACK).
        A kernel refusal raises KernelError worded as `ip` words it."""
        self.seq += 1
        self.sock.send(message(kind, flags | NLM_F_ACK, body, self.seq))
        reply = b""
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                length, mtype, _, seq, _ = _HDR.unpack_from(data, off)
                if length < _HDR.size:
                    raise KernelError(what, "malformed netlink reply", 2, self.netns)
                if seq == self.seq:
                    if mtype == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, off + _HDR.size)
                        if code:
                            raise KernelError(
                                what, f"RTNETLINK answers: {os.strerror(-code)}", 2, self.netns)
                        return reply
                    reply = data[off + _HDR.size: off + length]
                off += _align(length)

    def index(self, name: str) -> int:
        """The ifindex of `name` here (`Cannot find device` if absent), asked once per
        socket. Asked while the link is still down, if the plan allows: a GETLINK makes
        the kernel handle the link's pending carrier event at once, and for a link that
        is up without carrier (a veth whose peer is not up yet) that means deactivating
        its queues, which waits out an expedited RCU grace period holding the rtnl lock
        (every other link change on the machine waits too)."""
        cached = self._indexes.get(name)
        if cached is not None:
            return cached
        try:
            reply = self.request(RTM_GETLINK, 0, link_by_name_body(name), f"link show {name}")
        except KernelError as e:
            if "No such device" in e.stderr:
                raise KernelError(f"link show {name}", f'Cannot find device "{name}"', 1,
                                  self.netns) from None
            raise
        _, _, index, _, _ = _IFINFO.unpack_from(reply)
        self._indexes[name] = int(index)
        return int(index)

    def run(self, p: Line, line: str) -> None:
        """Carry out one parsed `ip` line in this socket's namespace (`line`, its text,
        names it in errors)."""
        if p.op == "veth":
            fd = open_netns_fd(p.args[2]) if len(p.args) == 3 else None
            try:
                self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                             veth_body(p.args[0], p.args[1], fd, p.queues), line)
            finally:
                if fd is not None:
                    os.close(fd)
            self._indexes.pop(p.args[0], None)
            self.index(p.args[0])  # now, while it is down (see `index`)
        elif p.op == "link-del":
            self._indexes.pop(p.args[0], None)
            self.request(RTM_DELLINK, 0, link_by_name_body(p.args[0]), line)
        elif p.op == "up":
            self.request(RTM_NEWLINK, 0, link_up_body(p.args[0]), line)
        elif p.op == "addr":
            flags = NLM_F_CREATE | (NLM_F_REPLACE if p.replace else NLM_F_EXCL)
            self.request(RTM_NEWADDR, flags, addr_body(self.index(p.args[1]), p.args[0]), line)
        elif p.op == "route":
            dst, dev, via, onlink = p.args
            flags = NLM_F_CREATE | (NLM_F_REPLACE if p.replace else NLM_F_EXCL)
            self.request(RTM_NEWROUTE, flags,
                         route_body(dst, self.index(dev), via or None, bool(onlink)), line)
        else:
            raise ValueError(f"not a socket line: {line!r}")


def add_netns(name: str) -> None:
    """`ip netns add <name>`, in this thread (blocking; see the module docstring)."""
    path = netns_path(name)
    if not netnsdir.is_prepared(path.parent):
        # The first namespace on this machine: ip also makes /run/netns a shared mount,
        # so that later mounts under it show in every mount namespace. Let ip do that.
        done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise KernelError(f"netns add {name}", done.stderr, done.returncode)
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    except FileExistsError:
        raise KernelError(f"netns add {name}",
                          f'Cannot create namespace file "{path}": File exists', 1) from None
    os.close(fd)
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net",
                   os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = mounts.libc()
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            os.unlink(path)
            raise KernelError(f"netns add {name}", f"unshare: {os.strerror(err)}", 1)
        try:
            own = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            if libc.mount(own, str(path).encode(), None, MS_BIND, None) != 0:
                err = ctypes.get_errno()
                os.unlink(path)
                raise KernelError(f"netns add {name}",
                                  f"Bind {own.decode()} -> {path} failed: {os.strerror(err)}", 1)
        finally:
            try:
                _setns(home)
            except OSError as e:
                _retire_executors()  # this thread would run later work in the new netns
                raise KernelError(f"setns back from {name}", str(e), 1, name) from e
    finally:
        os.close(home)


def del_netns(name: str) -> None:
    """`ip netns del <name>`: detach the bind mount, remove the file. Processes inside
    keep the namespace itself alive."""
    path = netns_path(name)
    if mounts.libc().umount2(str(path).encode(), mounts.MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err == errno.ENOENT:
            raise KernelError(f"netns del {name}", f'Cannot remove namespace file "{path}": '
                              "No such file or directory", 1)
        if err != errno.EINVAL:  # EINVAL: not a mount point (a half-made name): unlink it
            raise KernelError(f"netns del {name}", f"umount {path}: {os.strerror(err)}", 1)
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise KernelError(f"netns del {name}", f'Cannot remove namespace file "{path}": '
                          "No such file or directory", 1) from None


def run_lines(netns: str | None, lines: Sequence[str]) -> None:
    """Carry out supported `ip` lines in order, in `netns` (None: the host), stopping at
    the first failure (raised as KernelError naming that line). Blocking."""
    sock: Rtnl | None = None
    try:
        for line in lines:
            p = parse(line)
            if p is None:
                raise ValueError(f"not an rtnl line: {line!r}")
            if p.op.startswith("netns-"):
                if netns is not None:
                    raise ValueError(f"{line} runs on the host")
                (add_netns if p.op == "netns-add" else del_netns)(p.args[0])
                continue
            if sock is None:
                sock = Rtnl(netns)
            sock.run(p, line)
    except OSError as e:
        raise KernelError("; ".join(lines), f"RTNETLINK answers: {e.strerror}", 2,
                          netns) from e
    finally:
        if sock is not None:
            sock.close()


def run_groups(groups: Sequence[tuple[str | None, Sequence[str]]]) -> None:
    """`run_lines` for each (namespace, lines) group in turn, stopping at the first
    failure: a whole pod sandbox (host, node and pod namespaces) as one blocking call."""
    for ns, lines in groups:
        run_lines(ns, lines)


__all__ = ["Line", "Rtnl", "add_netns", "parse", "run_groups", "run_lines", "supported"]
