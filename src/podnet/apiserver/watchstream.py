"""Streaming watch responses: newline-delimited JSON events over chunked HTTP.

Bookmarks are sent when the client asked for them and the stream has been idle, so
informers can resume from a recent resourceVersion after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from podnet.api.errors import StatusError
from podnet.util import jsonutil

BOOKMARK_IDLE_SECONDS = 30.0
BATCH_BYTES = 256 * 1024
READY_STEP = 64  # events taken at a time from an iterator's `take_ready`


async def stream(
    request: web.Request,
    events: AsyncIterator[tuple[str, dict[str, Any]]],
    *,
    content_type: str,
    render: Callable[[str, dict[str, Any]], dict[str, Any]],
    timeout: float | None,
    bookmarks: bool,
    bookmark_object: Callable[[], dict[str, Any]],
    encode: Callable[[str, dict[str, Any]], bytes] | None = None,
) -> web.StreamResponse:
    """Copy events to the client until timeout, client close or server stop."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": content_type,
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if timeout is None:
        # Like kube-apiserver: between 30 and 60 minutes, so watches spread their re-lists.
        timeout = 1800.0 * (1.0 + random.random())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    iterator = events.__aiter__()
    # Optional: an iterator that can hand over the events already at hand (as
    # storage.ResourceWatch does) is drained in one go after each awaited event.
    take_ready: Callable[[int], list[tuple[str, dict[str, Any]]]] | None = getattr(
        iterator, "take_ready", None)
    pending: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            wait = min(remaining, BOOKMARK_IDLE_SECONDS) if bookmarks else remaining
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if not done:
                if bookmarks and deadline - loop.time() > 0:
                    await resp.write(jsonutil.dumps({"type": "BOOKMARK",
                                                     "object": bookmark_object()}) + b"\n")
                continue
            # Events committed together arrive together: send what is ready now as one
            # chunk (one write, one TLS record) instead of one per event.
            lines: list[bytes] = []
            size = 0
            finished = False
            while pending is not None and pending.done():
                task, pending = pending, None
                try:
                    etype, obj = task.result()
                except StopAsyncIteration:
                    finished = True
                    break
                except StatusError as err:
                    lines.append(jsonutil.dumps({"type": "ERROR", "object": err.to_status()})
                                 + b"\n")
                    finished = True
                    break
                ready = [(etype, obj)]
                while ready:
                    for etype, obj in ready:
                        line = (encode(etype, obj) if encode is not None else
                                jsonutil.dumps({"type": etype, "object": render(etype, obj)})
                                + b"\n")
                        lines.append(line)
                        size += len(line)
                    if size >= BATCH_BYTES or take_ready is None:
                        break
                    ready = take_ready(READY_STEP)  # the rest at hand, no loop turn each
                if size >= BATCH_BYTES:
                    break
                pending = asyncio.ensure_future(iterator.__anext__())
                await asyncio.sleep(0)  # one turn of the loop: is the next one there?
            if lines:
                await resp.write(b"".join(lines))
            if finished:
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()
    with contextlib.suppress(Exception):
        await resp.write_eof()
    return resp
