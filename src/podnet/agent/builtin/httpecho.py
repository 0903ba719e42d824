"""The `hashicorp/http-echo` image: serve `-text` (plus a newline) on every path.

Flags as upstream: `-listen` (default `:5678`), `-text` (or env `ECHO_TEXT`; required),
`-status-code` (default 200), `-version`. `/health` answers `{"status":"ok"}`. Missing text
or extra arguments print upstream's message and exit 127. SIGINT shuts down and exits 2 as
upstream does; SIGTERM shuts down and exits 0 (upstream dies of the signal, 143), so
graceful pod deletion reads as a clean stop.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

from podnet.agent.builtin import (
    FlagError,
    Request,
    Response,
    log,
    run,
    serve,
    split_listen,
    stop_event,
)

NAME = "http-echo"
VERSION = "1.0.0"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from podnet.agent.builtin import parse_flags

    try:
        flags, rest = parse_flags(
            args, {"listen": ":5678", "text": "", "status-code": 200, "version": False})
    except FlagError as exc:
        sys.stderr.write(f"flag provided but not defined or invalid: {exc}\n")
        return 2
    if flags["version"]:
        sys.stderr.write(f"{NAME} v{VERSION}\n")
        return 0
    text = str(flags["text"]) or os.environ.get("ECHO_TEXT", "")
    if not text:
        sys.stderr.write("Missing -text option OR ENV var TEXT is empty!\n")
        return 127
    if rest:
        sys.stderr.write("Too many arguments!\n")
        return 127
    listen = str(flags["listen"])
    try:
        host, port = split_listen(listen)
    except ValueError as exc:
        log(f"[ERR] server exited with: listen tcp {listen}: {exc}")
        return 1
    return run(lambda: _serve(text, int(flags["status-code"]), host, port, listen))


async def _serve(text: str, status: int, host: str | None, port: int, listen: str) -> int:
    body = (text + "\n").encode()
    app = [("X-App-Name", NAME), ("X-App-Version", VERSION)]

    async def handler(request: Request) -> Response:
        if request.path == "/health":
            return Response(body=b'{"status":"ok"}\n', headers=app)
        start = time.monotonic()
        response = Response(status=status, body=body, headers=app)
        ua = request.headers.get("user-agent", "")
        sys.stdout.write(
            f'{time.strftime("%Y/%m/%d %H:%M:%S")} {request.headers.get("host", "")} '
            f'{request.remote} "{request.method} {request.path} HTTP/1.1" {status} '
            f'{len(body)} "{ua}" {(time.monotonic() - start) * 1e6:.3f}µs\n')
        sys.stdout.flush()
        return response

    stop = stop_event()
    try:
        server = await serve(handler, host, port)
    except OSError as exc:
        log(f"[ERR] server exited with: listen tcp {listen}: {exc.strerror or exc}")
        return 1
    shown = listen if port else f"{listen.rpartition(':')[0]}:{server.port}"
    log(f"[INFO] server is listening on {shown}")
    await stop.wait()
    log("[INFO] received interrupt, shutting down...")
    await server.close(timeout=5.0)
    return 2 if stop.signum == signal.SIGINT else 0


if __name__ == "__main__":
    sys.exit(main())
