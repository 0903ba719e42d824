"""Named network namespaces (`/run/netns/<name>`, as `ip netns` keeps them) and doing
socket work inside one from this process.

Probes and port-forward must open connections *from* a pod's network namespace. Forking
`ip netns exec` per connection would cost milliseconds each, so instead a worker thread
enters the namespace with setns(2), creates and connects the socket, and goes back: a
socket belongs to the namespace it was created in for its whole life, wherever it is used
afterwards. setns(2) changes only the calling thread, so the event loop is never moved.
Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from podnet.kernel.mounts import libc
from podnet.kernel.run import KernelError, run

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

T = TypeVar("T")

# Two pools. WORK: calls that are a few syscalls (making a pod's namespace, veth, routes;
# sysctls). WAIT: calls that may block (a veth delete waits out an RCU grace period of
# ~20 ms; a connect may wait for its timeout). Kept apart, a burst of pod deletions or a
# probe to a silent address never holds up the next pod's sandbox.
WORK, WAIT = "work", "wait"
_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = threading.Lock()


def _setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    if libc().setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_path(name: str) -> Path:
    if not name or "/" in name or name in (".", "..") or any(c.isspace() for c in name):
        raise ValueError(f"invalid network namespace name: {name!r}")
    return NETNS_DIR / name


def netns_exists(name: str) -> bool:
    """Whether the named namespace is mounted (a stat on tmpfs: no need to leave the loop)."""
    return netns_path(name).exists()


def list_netns() -> list[str]:
    """Names of all named network namespaces, sorted (like `ip netns list`, without ids)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


async def create_netns(name: str) -> None:
    """`ip netns add <name>`; KernelError (with `.exists`) if it is already there."""
    netns_path(name)
    await run("ip", "netns", "add", name)


async def delete_netns(name: str, missing_ok: bool = True) -> bool:
    """`ip netns del <name>`. Returns whether it existed. Processes still inside keep the
    namespace alive, only its name goes: detach its links first if that matters."""
    if missing_ok and not netns_exists(name):
        return False
    try:
        await run("ip", "netns", "del", name)
    except KernelError as e:
        if missing_ok and e.not_found:
            return False
        raise
    return True


def open_netns_fd(name: str) -> int:
    """An O_RDONLY fd on the named namespace, for setns(2); the caller closes it."""
    return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Call `fn` with this thread inside netns `name`, then return the thread to the
    namespace it was in. Blocking: call it from a worker thread, never the event loop.

    If the way back fails the thread is unusable (it would run later work in a pod's
    namespace), so the error is raised as KernelError and the shared executors are
    replaced; the tainted idle thread then exits."""
    target = open_netns_fd(name)
    try:
        home = os.open(
            f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY | os.O_CLOEXEC
        )
    except BaseException:
        os.close(target)
        raise
    try:
        _setns(target)
        try:
            return fn()
        finally:
            try:
                _setns(home)
            except OSError as e:
                _retire_executors()
                raise KernelError(f"setns back from {name}", str(e), 1, name) from e
    finally:
        os.close(target)
        os.close(home)


def connect_in_netns(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected to host:port from inside `netns` (blocking; see aconnect).

    The returned socket is in blocking mode; connect errors (ECONNREFUSED, ENETUNREACH,
    EHOSTUNREACH, timeouts) propagate as the OSError the kernel gave."""

    def connect() -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect((host, port))
            s.settimeout(None)
        except BaseException:
            s.close()
            raise
        return s

    return in_netns(netns, connect)


def sysctl_in_netns(name: str, key: str, value: str | int) -> None:
    """Write a sysctl (dotted `net.ipv4.ip_forward` or `net/ipv4/…` form) inside netns
    `name`. /proc/sys/net shows the namespace of the opening thread, so no exec is
    needed. Blocking; use asysctl_in_netns from async code."""
    rel = key if "/" in key else key.replace(".", "/")
    if ".." in rel.split("/") or rel.startswith("/"):
        raise ValueError(f"invalid sysctl key: {key!r}")

    def write() -> None:
        with open(f"/proc/sys/{rel}", "w") as f:
            f.write(f"{value}\n")

    in_netns(name, write)


def _pool(kind: str = WORK) -> ThreadPoolExecutor:
    with _executor_lock:
        executor = _executors.get(kind)
        if executor is None:
            # Small on purpose: the pools only keep setns off the loop thread and bound
            # how many threads sit in pod namespaces.
            executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"podnet-{kind}")
            _executors[kind] = executor
        return executor


def _retire_executors() -> None:
    """Replace both pools (we cannot tell which one the tainted thread belongs to)."""
    with _executor_lock:
        old = list(_executors.values())
        _executors.clear()
    for executor in old:
        executor.shutdown(wait=False)


async def aconnect_in_netns(netns: str, host: str, port: int, timeout: float) -> socket.socket:
    """connect_in_netns on the netns thread pool. Hand the result to
    `asyncio.open_connection(sock=...)` to use it from the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(WAIT), connect_in_netns, netns, host, port,
                                      timeout)


async def in_pool(fn: Callable[..., T], *args: object, kind: str = WORK) -> T:
    """Run a blocking namespace operation (setns, unshare, netlink) on a netns pool:
    `kind` WAIT for one that may block for a while (see WORK/WAIT)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(kind), fn, *args)


async def asysctl_in_netns(name: str, key: str, value: str | int) -> None:
    """sysctl_in_netns on the netns thread pool."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(_pool(), sysctl_in_netns, name, key, value)
