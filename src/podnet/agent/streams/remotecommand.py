"""exec / attach over websocket, the `v5.channel.k8s.io` channel protocol (and v4).

Every binary message starts with a channel byte (k8s.io/apimachinery's wsstream and
client-go's websocket executor):

    0 stdin (client → server)     3 error: a metav1.Status JSON, sent once at the end
    1 stdout                      4 resize: {"Width": cols, "Height": rows}
    2 stderr                    255 close (v5 only): [255, 0] = the client closed stdin

v4 has no close channel: stdin ends when the websocket does. The exit is reported on
channel 3 as `Success`, or `Failure` / `NonZeroExitCode` with the code in
`details.causes[{reason: ExitCode}]`, which kubectl turns into its own exit code and
"command terminated with exit code N".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from podnet.agent.streams import ExecProcess

log = logging.getLogger("podnet.agent.streams")

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_OUT_CHANNEL = {"stdout": STDOUT, "stderr": STDERR}


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: tuple[str, ...] = ()) -> dict[str, Any]:
    """The channel-3 Status for a finished process, as the kubelet words it."""
    if code == 0:
        return success_status()
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
                   f"{list(command)}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str, reason: str = "InternalError", code: int = 500
                   ) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason,
            "code": code}


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """(cols, rows) from a resize message, None when it is not one."""
    try:
        size = json.loads(payload)
        return int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None


async def send_status(ws: web.WebSocketResponse, status: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())


async def serve(ws: web.WebSocketResponse, process: ExecProcess,
                command: tuple[str, ...] = (), *, attach: bool = False) -> int | None:
    """Run one exec session on a prepared websocket until the process exits.

    Returns the exit code, or None when the client went away first; then the process
    is killed (the kubelet does the same for exec; an attach session's `kill` only
    detaches). The websocket is closed on return. An attach ends with `Success` whatever
    the container's exit code: like the kubelet, attach reports the stream, not the
    process (`kubectl run` reads the exit code from the pod's status).
    """
    v5 = ws.ws_protocol == V5
    pump = asyncio.create_task(_pump_input(ws, process, v5))
    try:
        while (chunk := await process.read()) is not None:
            stream, data = chunk
            if data:
                await ws.send_bytes(bytes([_OUT_CHANNEL.get(stream, STDOUT)]) + data)
        code = await process.wait()
        await send_status(ws, success_status() if attach else exit_status(code, command))
        return code
    except (ConnectionError, RuntimeError):
        process.kill()
        return None
    except asyncio.CancelledError:
        process.kill()
        raise
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        with contextlib.suppress(Exception):
            await ws.close()


async def _pump_input(ws: web.WebSocketResponse, process: ExecProcess, v5: bool) -> None:
    stdin_open = True
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                data: bytes = msg.data
            elif msg.type == WSMsgType.TEXT:
                data = msg.data.encode()
            else:
                break
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == STDIN and stdin_open:
                if payload:
                    await process.write(payload)
            elif channel == RESIZE:
                size = parse_resize(payload)
                if size is not None:
                    process.resize(*size)
            elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]) and stdin_open:
                stdin_open = False
                process.close_stdin()
    except (ConnectionError, OSError) as exc:
        log.debug("component=agent event=exec-input-error error=%s", exc)
    finally:
        if stdin_open:
            process.close_stdin()
    # The client closed the websocket before the process ended: nobody is left to
    # read the output, so end the process rather than leave it running.
    if ws.closed:
        process.kill()
