"""Writing to a non-blocking pipe or terminal from the event loop (exec and attach stdin).

The fd can be closed under the writer (the process ended, stdinOnce), so it is asked for
again after every wait: `fd()` returns -1 once there is nowhere to write.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


def resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def write_all(fd: Callable[[], int], data: bytes, closed: str) -> None:
    """Write all of `data`, waiting for room when the pipe is full; BrokenPipeError with
    `closed` once `fd()` is -1."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        target = fd()
        if target < 0:
            raise BrokenPipeError(closed)
        try:
            view = view[os.write(target, view):]
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_writer(target, resolve, ready)
            try:
                await ready
            finally:
                loop.remove_writer(target)
