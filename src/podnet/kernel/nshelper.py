"""A helper process that makes network namespaces and links for the agent.

Why a process: making a pod sandbox is a few hundred microseconds of Python (building and
reading rtnetlink messages) around syscalls that wait on the kernel's namespace locks.
Done on threads inside the agent, that Python needs the agent's GIL: in a 100-pod burst
the agent's event loop then waited for the GIL after nearly every syscall it made (0.5 ms
per `sendmsg` to the fork server, 80 µs per file open), and the loop is what every pod
waits on. Here the same work runs under a GIL of its own, on the other core.

    python -m podnet.kernel.nshelper [--workers N]

One JSON object per line on stdin, one reply per line on stdout, in completion order:

    agent → helper  {"id": I, "groups": [[netns or null, ["<ip line>", ...]], ...]}
    helper → agent  {"id": I}  or  {"id": I, "error": [command, stderr, returncode, netns]}

Each request is `rtnl.run_lines` over its groups in order, stopping at the first failure,
on one of N threads (one by default: see WORKERS). The helper exits when stdin closes. A
thread that cannot get back to the host namespace would run later work in a pod's: the
helper then answers and exits, and the client starts a new one on the next request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from podnet.kernel import rtnl
from podnet.kernel.run import KernelError
from podnet.util import jsonutil

Groups = Sequence[tuple[str | None, Sequence[str]]]
# One thread: sandboxes are made one at a time anyway, since every link change takes the
# kernel's rtnl lock, and threads contending for it spin and hand it over at a cost. With
# 8 threads, 100 sandboxes at once took 184-197 ms and 0.16-0.17 s of kernel CPU; with
# one, 165-174 ms and 0.08-0.12 s (and the 100-pod burst's p99 was lowest with one).
WORKERS = 1
STOP_SECONDS = 5.0


def _answer(rid: int, groups: Groups) -> tuple[dict[str, Any], bool]:
    """The reply for one request, and whether this process must exit after it."""
    try:
        rtnl.run_groups(groups)
        return {"id": rid}, False
    except KernelError as e:
        tainted = e.command.startswith("setns back")
        return {"id": rid, "error": [e.command, e.stderr, e.returncode, e.netns]}, tainted
    except Exception as e:  # a bug or a bad line: the agent hears of it, we go on
        return {"id": rid, "error": ["; ".join(x for _, ls in groups for x in ls),
                                     f"{type(e).__name__}: {e}", 1, None]}, False


def serve(inp: IO[bytes], out: IO[bytes], workers: int = WORKERS) -> None:
    """Blocking: answer requests from `inp` until it closes."""
    lock = threading.Lock()

    def one(rid: int, groups: Groups) -> None:
        reply, tainted = _answer(rid, groups)
        data = json.dumps(reply, separators=(",", ":")).encode() + b"\n"
        with lock:
            out.write(data)
            out.flush()
        if tainted:
            os._exit(3)

    with ThreadPoolExecutor(workers, thread_name_prefix="nshelper") as pool:
        for line in inp:
            try:
                req = json.loads(line)
                rid = int(req["id"])
                groups = [(ns, [str(x) for x in lines]) for ns, lines in req["groups"]]
            except (ValueError, KeyError, TypeError):
                continue  # not from our client
            pool.submit(one, rid, groups)


def _fail_exited(futures: Iterable[asyncio.Future[None]]) -> None:
    """Requests the helper will never answer fail as a KernelError."""
    for fut in futures:
        if not fut.done():
            fut.set_exception(KernelError("netns helper", "the helper exited", 1))


class NetnsHelper:
    """The agent's end: `await run_groups(groups)` as `rtnl.run_lines` over each group,
    raising the KernelError the helper reported. Started on first use, and again after
    it died; `close()` stops the one we started, by its PID."""

    def __init__(self, workers: int = WORKERS, python: str = sys.executable) -> None:
        self.workers = workers
        self.python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._starting: asyncio.Lock | None = None
        self._outbox: list[tuple[int, bytes]] = []  # requests made in this turn of the loop

    async def start(self) -> None:
        """Start the helper now (the first sandbox of a burst need not wait for it)."""
        await self._ensure()

    async def _ensure(self) -> asyncio.subprocess.Process:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "podnet.kernel.nshelper", "--workers", str(self.workers),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            self._proc = proc
            self._reader = asyncio.create_task(self._read(proc))
            return proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            async for line in proc.stdout:
                try:
                    reply = jsonutil.loads(line)
                    fut = self._pending.pop(int(reply["id"]))
                except (ValueError, KeyError, TypeError):
                    continue
                if fut.done():
                    continue
                err = reply.get("error")
                if err:
                    command, stderr, code, netns = err
                    fut.set_exception(KernelError(command, stderr, int(code), netns))
                else:
                    fut.set_result(None)
        finally:
            # The helper is gone: whatever it had not answered may be half done; the
            # callers' own recovery (delete and make again) handles that.
            pending, self._pending = self._pending, {}
            _fail_exited(pending.values())

    async def run_groups(self, groups: Groups) -> None:
        await self._ensure()
        loop = asyncio.get_running_loop()
        rid = next(self._ids)
        fut: asyncio.Future[None] = loop.create_future()
        self._pending[rid] = fut
        # Requests made in one turn of the loop (a burst's pods arrive together) go as
        # one write: each write wakes the helper, and the woken helper took the CPU from
        # the agent there and then, once per request.
        if not self._outbox:
            loop.call_soon(self._flush)
        self._outbox.append((rid, jsonutil.dumps({"id": rid, "groups": [
            [ns, list(lines)] for ns, lines in groups]}) + b"\n"))
        await fut

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            # It died this very turn: the callers recover.
            _fail_exited(f for rid, _ in outbox if (f := self._pending.pop(rid, None)))
            return
        proc.stdin.write(b"".join(data for _, data in outbox))

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_SECONDS)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m podnet.kernel.nshelper")
    ap.add_argument("--workers", type=int, default=WORKERS)
    args = ap.parse_args(argv)
    serve(sys.stdin.buffer, sys.stdout.buffer, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
