"""The node agent's streaming endpoints, as the kubelet serves them on :10250.

- `logs`: `/containerLogs/{ns}/{pod}/{container}` from the per-container log file.
- `remotecommand`: `/exec/...` (and `/attach/...`) over websocket `v5.channel.k8s.io`
  (and `v4.channel.k8s.io`).
- `portforward` over `spdy`: `/portForward/{ns}/{pod}`, SPDY/3.1 inside a websocket
  (`SPDY/3.1+portforward.k8s.io`).
- `server.add_routes()` mounts all of them on the agent's aiohttp app.

This module holds the contracts the rest of the agent implements: the container
runtime's `ExecProcess`, the pod-network `Connect` callable, and `StreamError`, which a
resolver raises to refuse a request with a Kubernetes status code and message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class ExecProcess(Protocol):
    """A process started in a container for exec (or the container itself for attach)."""

    async def read(self) -> tuple[str, bytes] | None:
        """The next output chunk as ("stdout" | "stderr", data); None at EOF of both."""
        ...

    async def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, cols: int, rows: int) -> None: ...

    async def wait(self) -> int:
        """The exit code (128+N for a signal, as a shell reports it)."""
        ...

    def kill(self) -> None:
        """End the process (SIGKILL); a no-op once it has exited."""
        ...


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """What `kubectl exec` asked for. An empty `command` means attach."""

    namespace: str
    pod: str
    container: str
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


# async connect(port) -> a TCP connection to 127.0.0.1:<port> inside the pod's netns.
Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class StreamError(Exception):
    """Refuse a stream request: `code` is the HTTP status, `message` what kubectl prints.

    `reason` is the Kubernetes Status reason (`NotFound`, `BadRequest`, ...).
    """

    def __init__(self, message: str, code: int = 500, reason: str = "InternalError") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason

    def to_status(self) -> dict[str, object]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


__all__ = ["Connect", "ExecProcess", "ExecRequest", "StreamError"]
