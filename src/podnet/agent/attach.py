"""`kubectl attach` (and `kubectl run -i/-it`): a client joins a running container's
main process instead of starting a new one.

The container's output is already read by the runtime's log pumps; an attached session
is one more listener on them (output from before the attach is not replayed, as with
the kubelet). Input goes to the stdin pipe or terminal the runtime kept for a container
whose spec asked for `stdin` / `tty`. Leaving an attach never stops the container; with
`stdinOnce` the first session to end closes the container's stdin, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import Callable

from podnet.agent.fdio import write_all

Tap = Callable[[str, bytes], None]


class AttachTarget:
    """What the runtime keeps of a container for attach: listeners and the input side.

    `stdin_fd` is our end of the container's stdin (a pipe's write end, or a copy of the
    terminal's master side), -1 when there is none or it was closed.
    """

    def __init__(self, *, tty: bool, stdin_once: bool, stdin_fd: int = -1) -> None:
        self.tty = tty
        self.stdin_once = stdin_once
        self.stdin_fd = stdin_fd
        self.taps: set[Tap] = set()
        self.sessions = 0  # attaches so far (stdinOnce closes stdin after the first)

    def publish(self, stream: str, data: bytes) -> None:
        for tap in list(self.taps):
            tap(stream, data)

    def close_stdin(self) -> None:
        """The container reads EOF: the pipe's write end goes; a terminal gets EOT (the
        master stays open: closing it would hang the container up)."""
        if self.stdin_fd < 0:
            return
        if self.tty:
            with contextlib.suppress(OSError):
                os.write(self.stdin_fd, b"\x04")
        os.close(self.stdin_fd)
        self.stdin_fd = -1


class AttachSession:
    """One attached client; the runtime's `ExecProcess` contract (streams/__init__)."""

    def __init__(self, target: AttachTarget, done: asyncio.Future[int], *,
                 stdin: bool) -> None:
        self.target = target
        self.tty = target.tty
        self.stdin = stdin
        self._done = done
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._detached = asyncio.get_running_loop().create_future()
        target.sessions += 1
        target.taps.add(self._tap)
        done.add_done_callback(self._ended)

    def _tap(self, stream: str, data: bytes) -> None:
        self._queue.put_nowait(("stdout" if self.tty else stream, data))

    def _ended(self, _: object = None) -> None:
        self.target.taps.discard(self._tap)
        self._queue.put_nowait(None)

    async def read(self) -> tuple[str, bytes] | None:
        if self._detached.done() and self._queue.empty():
            return None
        return await self._queue.get()

    async def write(self, data: bytes) -> None:
        if not self.stdin:
            return  # the client asked for no stdin; what it sends anyway is dropped
        await write_all(lambda: self.target.stdin_fd, data, "the container's stdin is closed")

    def close_stdin(self) -> None:
        """The client has no more input: only stdinOnce passes that on."""
        if self.stdin and self.target.stdin_once:
            self.target.close_stdin()

    def resize(self, cols: int, rows: int) -> None:
        fd = self.target.stdin_fd
        if self.tty and fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        """The container's exit code once it ends; 0 when the client left first."""
        await asyncio.wait({self._done, self._detached}, return_when=asyncio.FIRST_COMPLETED)
        return self._done.result() if self._done.done() else 0

    def kill(self) -> None:
        """The client went away: detach (the container keeps running)."""
        if self._detached.done():
            return
        self._detached.set_result(None)
        self.close_stdin()
        self._ended()
