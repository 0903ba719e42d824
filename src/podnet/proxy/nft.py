"""The one module of podnet.proxy that touches nftables: run a script from
`podnet.proxy.tables` (nft text syntax) as one atomic transaction inside a named network
namespace, list the table, delete it.

Two ways in, same text: libnftables (the `nftables` module) called from a worker thread
that setns(2)'s into the namespace — its netlink socket is made there, so it programs
that namespace — or `ip netns exec <ns> nft -f -`. The library is the default: it skips
two execs per sync (measured on 2 shared cores: ≈1 ms against ≈9 ms for a small diff).
`backend="exec"` stays for machines without the Python binding.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from podnet.kernel.netns import in_netns, netns_exists
from podnet.kernel.run import KernelError, run
from podnet.proxy.ruleset import FAMILY, TABLE

Backend = Literal["lib", "exec"]

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # One thread: transactions are serialised per process anyway, and a single thread
    # makes "which namespace is this thread in" trivially answerable.
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podnet-nft")
        return _executor


def _lib_run(netns: str, text: str) -> tuple[int, str, str]:
    def call() -> tuple[int, str, str]:
        import nftables  # the binding is optional: the exec backend works without it

        nft = nftables.Nftables()
        nft.set_json_output(True)  # for listings; commands print nothing
        rc, out, err = nft.cmd(text)
        return int(rc), str(out or ""), str(err or "")

    return in_netns(netns, call)


async def _run_lib(netns: str, doc: str) -> tuple[int, str, str]:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), _lib_run, netns, doc)


async def _run_exec(netns: str, argv: Sequence[str], input: str | None) -> tuple[int, str, str]:
    done = await run("ip", "netns", "exec", netns, "nft", *argv, input=input, check=False)
    return done.returncode, done.stdout, done.stderr


def _check(netns: str) -> None:
    if not netns_exists(netns):
        raise KernelError(f"nft in {netns}", "network namespace does not exist", 1, netns)


async def apply(netns: str, script: str, backend: Backend = "lib") -> None:
    """Run `script` (nft commands, one per line) in `netns` as one transaction: all of
    them or, on any error, none (the kernel aborts the whole batch). Raises KernelError
    with nft's message."""
    _check(netns)
    if not script.strip():
        return
    if backend == "lib":
        rc, _, err = await _run_lib(netns, script)
    else:
        rc, _, err = await _run_exec(netns, ["-f", "-"], script)
    if rc != 0:
        lines = script.count("\n") + 1
        raise KernelError(f"nft -f - ({lines} commands)", err[:4000], rc, netns)


async def apply_each(netns: str, scripts: Iterable[str], backend: Backend = "lib") -> int:
    """Apply `scripts` in order, each as its own transaction; returns how many. `scripts`
    is pulled lazily, so the next one is computed while the kernel takes the previous:
    libnftables runs in the worker thread and ctypes releases the GIL around it, so on a
    cold sync Python and the kernel work at the same time. Stops at the first error."""
    running: asyncio.Task[None] | None = None
    count = 0
    for script in scripts:
        if running is not None:
            await running
        running = asyncio.create_task(apply(netns, script, backend))
        await asyncio.sleep(0)  # let it reach the worker thread before making the next
        count += 1
    if running is not None:
        await running
    return count


async def list_table(netns: str, backend: Backend = "lib") -> dict[str, Any]:
    """`nft -j list table ip podnet-proxy` in `netns`, parsed; {} when there is no table."""
    _check(netns)
    if backend == "lib":
        rc, out, err = await _run_lib(netns, f"list table {FAMILY} {TABLE}")
    else:
        rc, out, err = await _run_exec(netns, ["-j", "list", "table", FAMILY, TABLE], None)
    if rc != 0:
        if "No such file or directory" in err or "does not exist" in err:
            return {}
        raise KernelError(f"nft list table {FAMILY} {TABLE}", err, rc, netns)
    parsed: dict[str, Any] = json.loads(out) if out.strip() else {}
    return parsed


async def delete_table(netns: str, backend: Backend = "lib") -> bool:
    """Remove the proxy's table from `netns`; returns whether there was one. A missing
    namespace counts as no table (nothing left to clean)."""
    if not netns_exists(netns):
        return False
    if not await list_table(netns, backend):
        return False
    await apply(netns, f"delete table {FAMILY} {TABLE}\n", backend)
    return True
