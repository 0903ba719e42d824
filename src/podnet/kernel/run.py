"""Run kernel tools (`ip`, `sysctl`, …) off the event loop, with typed failures.

Every change podnet makes to links, addresses and routes goes through `ip -batch -`, so
one pod costs a few process spawns instead of one per command, and a failure names the
exact batch line that the kernel refused.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Kernel messages are matched on (e.g. "Cannot find device"): never let a locale
# translate them.
_ENV = {**os.environ, "LC_ALL": "C"}

# Forking is the expensive part of every call; bound it so a burst of 100 pods on two
# cores queues in Python instead of thrashing the scheduler with hundreds of children.
_MAX_CHILDREN = 16
_slots: asyncio.Semaphore | None = None
_slots_loop: asyncio.AbstractEventLoop | None = None

# `ip -batch` reports the failing line as "Command failed -:<line>".
_FAILED_LINE = re.compile(r"Command failed -:(\d+)")


@dataclass(frozen=True, slots=True)
class Completed:
    """What a finished tool run returned (the subset of CompletedProcess we use)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class KernelError(Exception):
    """A kernel tool refused a command. `command` is the one line that failed (for a
    batch, the batch line; otherwise the whole argv), `stderr` the kernel's words."""

    def __init__(self, command: str, stderr: str, returncode: int, netns: str | None = None):
        self.command = command
        self.stderr = stderr.strip()
        self.returncode = returncode
        self.netns = netns
        where = f" (in netns {netns})" if netns else ""
        super().__init__(f"`{command}`{where} failed ({returncode}): {self.stderr}")

    @property
    def not_found(self) -> bool:
        """The object to change or delete does not exist (idempotent deletes ignore it)."""
        s = self.stderr
        return (
            "Cannot find device" in s
            # A veth vanishes with its peer's namespace: deleting both at once races.
            or "No such device" in s
            or "No such file or directory" in s
            or "No such process" in s
            or "does not exist" in s
        )

    @property
    def exists(self) -> bool:
        """The object to create is already there."""
        return "File exists" in self.stderr


def _semaphore() -> asyncio.Semaphore:
    # A semaphore belongs to one loop; tests run a fresh loop per test.
    global _slots, _slots_loop
    loop = asyncio.get_running_loop()
    if _slots is None or _slots_loop is not loop:
        _slots, _slots_loop = asyncio.Semaphore(_MAX_CHILDREN), loop
    return _slots


async def run(*argv: str, input: str | None = None, check: bool = True) -> Completed:
    """Run `argv` as a child process without blocking the loop; raise KernelError if it
    fails and `check` is set."""
    async with _semaphore():
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_ENV,
        )
        out, err = await proc.communicate(input.encode() if input is not None else None)
    done = Completed(
        tuple(argv),
        proc.returncode or 0,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )
    if check and done.returncode != 0:
        raise KernelError(" ".join(argv), done.stderr, done.returncode)
    return done


def failed_batch_line(commands: Sequence[str], stderr: str) -> str:
    """The batch line `ip` stopped at, or all lines joined when it does not say."""
    m = _FAILED_LINE.search(stderr)
    if m and 1 <= int(m.group(1)) <= len(commands):
        return commands[int(m.group(1)) - 1]
    return "; ".join(commands)


def batch_argv(netns: str | None) -> list[str]:
    """`ip -batch -`, inside `netns` when given (ip switches netns itself: no extra exec)."""
    return ["ip", *(("-n", netns) if netns else ()), "-batch", "-"]


async def ip_batch(commands: Sequence[str], netns: str | None = None) -> Completed:
    """Apply `ip` commands (without the leading `ip`) in one process, in order, stopping
    at the first failure, which is raised as KernelError naming that line."""
    for c in commands:
        if "\n" in c or not c.strip():
            raise ValueError(f"not one ip batch line: {c!r}")
    if not commands:
        return Completed(tuple(batch_argv(netns)), 0, "", "")
    done = await run(*batch_argv(netns), input="\n".join(commands) + "\n", check=False)
    if done.returncode != 0:
        raise KernelError(
            failed_batch_line(commands, done.stderr), done.stderr, done.returncode, netns
        )
    return done
