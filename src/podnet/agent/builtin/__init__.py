"""Programs podnet ships for well-known images (agnhost, http-echo, pause, nginx's default page).

Each runs as `python -m podnet.agent.builtin.<name>` inside a pod's network namespace, so it
must start fast and stay small: only the standard library, and asyncio imported lazily
(`pause` never needs it). This module holds what the programs share: Go-style flag parsing
and log lines, Go durations, the listening address rules, and a tiny HTTP/1.1 server on
asyncio streams (aiohttp would cost ~200 ms of start-up and ~20 MB per pod).

Test hook: `PODNET_BUILTIN_BIND=127.0.0.1` makes every wildcard listener (`:port`) bind that
address instead, so tests never listen on the machine's interfaces.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    import socket
    import ssl

BIND_ENV = "PODNET_BUILTIN_BIND"


# ---------------------------------------------------------------------------------------------
# Logging and flags, the way Go programs print and parse them


def log(message: str) -> None:
    """A line in Go's `log` package format (`2006/01/02 15:04:05 msg`) on stderr."""
    sys.stderr.write(time.strftime("%Y/%m/%d %H:%M:%S ") + message.rstrip("\n") + "\n")
    sys.stderr.flush()


class FlagError(Exception):
    """Bad command line; the message is what the upstream program would print."""


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}

FlagValue = str | int | bool | float


def parse_flags(
    argv: Sequence[str], spec: Mapping[str, FlagValue]
) -> tuple[dict[str, FlagValue], list[str]]:
    """Parse Go-style flags: `--name=v`, `--name v`, `-name=v`, bare `--name` for booleans.

    `spec` maps each flag to its default; the default's type is the flag's type (a float
    default means a Go duration, in seconds). Returns the values and the positional args.
    """
    values: dict[str, FlagValue] = dict(spec)
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, raw = arg.lstrip("-").partition("=")
        if name not in spec:
            raise FlagError(f"unknown flag: {arg.split('=', 1)[0]}")
        default = spec[name]
        if isinstance(default, bool):
            if not eq:
                values[name] = True
                continue
            if raw not in _TRUE | _FALSE:
                raise FlagError(f'invalid argument "{raw}" for "{arg}": strconv.ParseBool')
            values[name] = raw in _TRUE
            continue
        if not eq:
            if i >= len(argv):
                raise FlagError(f"flag needs an argument: {arg}")
            raw = argv[i]
            i += 1
        try:
            if isinstance(default, int):
                values[name] = int(raw, 10)
            elif isinstance(default, float):
                values[name] = parse_duration(raw)
            else:
                values[name] = raw
        except ValueError as exc:
            raise FlagError(f'invalid argument "{raw}" for "--{name}" flag: {exc}') from None
    return values, positional


_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration (`5s`, `1m30s`, `250ms`, `0`) in seconds."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def hostname() -> str:
    return os.uname().nodename


# ---------------------------------------------------------------------------------------------
# Addresses


def split_listen(address: str) -> tuple[str | None, int]:
    """`":8080"` → (None, 8080) meaning every address; `"127.0.0.1:0"`, `"[::1]:80"` → host."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address}: missing port in address")
    host = host.strip("[]")
    return (host or None), int(port)


def listen_host(host: str | None) -> str | None:
    """The host to bind: the test override replaces the wildcard, never an explicit host."""
    if host in (None, "", "0.0.0.0", "::"):
        return os.environ.get(BIND_ENV) or None
    return host


def _wildcard_socket(kind: int, port: int) -> socket.socket:
    """A socket on every address: dual-stack `[::]` like Go's `:port`, or IPv4 alone when the
    namespace has no IPv6."""
    import socket

    try:
        sock = socket.socket(socket.AF_INET6, kind)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::", port))
        except OSError:
            sock.close()
            raise
    except OSError:
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
    return sock


def bind_socket(host: str | None, port: int, *, udp: bool = False) -> socket.socket:
    """A bound socket (TCP sockets also listening), honouring the test override."""
    import socket

    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    bind = listen_host(host)
    if bind is None:
        sock = _wildcard_socket(kind, port)
    else:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        sock = socket.socket(family, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
    if not udp:
        sock.listen(128)
    sock.setblocking(False)
    return sock


def format_peer(peer: object) -> str:
    """`ip:port` as Go prints a remote address (IPv4-mapped IPv6 shown as IPv4)."""
    if not isinstance(peer, tuple) or len(peer) < 2:
        return str(peer)
    ip, port = str(peer[0]), peer[1]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[len("::ffff:"):]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def bound_port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------------------------
# A tiny HTTP/1.1 server


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    remote: str  # "ip:port"
    server_port: int

    def arg(self, name: str) -> str:
        """The first value of a query (or url-encoded form) parameter, "" if absent."""
        values = self.query.get(name)
        return values[0] if values else ""


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


Handler = Callable[[Request], Awaitable[Response]]

_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    412: "Precondition Failed", 417: "Expectation Failed", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


def text(body: str, status: int = 200) -> Response:
    return Response(status=status, body=body.encode())


def sniff_content_type(body: bytes) -> str:
    """Go's net/http guesses the type of bodies without one; these are the two cases we hit."""
    head = body.lstrip()[:14].lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<h1", b"<p")):
        return "text/html; charset=utf-8"
    return "text/plain; charset=utf-8"


def _http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


class HTTPServer:
    """Serve `handler` on one listening socket until `close()`."""

    def __init__(self, handler: Handler, sock: socket.socket,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.sock = sock
        self.port = bound_port(sock)
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        import asyncio

        self._server = await asyncio.start_server(
            self._connection, sock=self.sock, ssl=self.ssl_context, limit=1 << 16)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop accepting; close idle keep-alive connections; wait for the rest."""
        import asyncio

        if self._server is not None:
            self._server.close()
        for writer in list(self._idle):
            writer.close()
        pending = [t for t in self._connections if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            for task in still:
                task.cancel()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        import asyncio

        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        remote = format_peer(writer.get_extra_info("peername"))
        try:
            while True:
                self._idle.add(writer)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    return
                finally:
                    self._idle.discard(writer)
                request, keep_alive = await self._parse(head, reader, remote)
                if request is None:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                    await writer.drain()
                    return
                try:
                    response = await self.handler(request)
                except Exception as exc:  # a handler bug must not kill the server
                    log(f"handler error for {request.method} {request.target}: {exc!r}")
                    response = text(f"Internal Server Error: {exc}\n", 500)
                keep_alive = keep_alive and not response.close
                writer.write(self._encode(request, response, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _parse(self, head: bytes, reader: asyncio.StreamReader,
                     remote: str) -> tuple[Request | None, bool]:
        from urllib.parse import parse_qs, urlsplit

        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return None, False
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                return None, False
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers \
                else value.strip()
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = await reader.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # trailer end (no trailers expected)
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        url = urlsplit(target)
        query = parse_qs(url.query, keep_blank_values=True)
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            for k, v in parse_qs(body.decode("latin-1"), keep_blank_values=True).items():
                query.setdefault(k, []).extend(v)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        request = Request(method=method, target=target, path=url.path or "/", query=query,
                          headers=headers, body=body, remote=remote, server_port=self.port)
        return request, keep_alive

    @staticmethod
    def _encode(request: Request, response: Response, keep_alive: bool) -> bytes:
        names = {k.lower() for k, _ in response.headers}
        headers = list(response.headers)
        if "content-type" not in names and response.body:
            headers.append(("Content-Type", sniff_content_type(response.body)))
        headers.append(("Date", _http_date()))
        headers.append(("Content-Length", str(len(response.body))))
        if not keep_alive:
            headers.append(("Connection", "close"))
        reason = _REASONS.get(response.status, "Status")
        out = [f"HTTP/1.1 {response.status} {reason}\r\n"]
        out.extend(f"{k}: {v}\r\n" for k, v in headers)
        out.append("\r\n")
        data = "".join(out).encode("latin-1")
        return data if request.method == "HEAD" else data + response.body


async def serve(handler: Handler, host: str | None, port: int,
                ssl_context: ssl.SSLContext | None = None) -> HTTPServer:
    server = HTTPServer(handler, bind_socket(host, port), ssl_context)
    await server.start()
    return server


# ---------------------------------------------------------------------------------------------
# Running until a signal


class Stop:
    """Set by SIGTERM or SIGINT (or the given signals); remembers which one arrived."""

    def __init__(self, signals: Sequence[int] | None = None) -> None:
        import asyncio
        import signal

        self.event = asyncio.Event()
        self.signum: int | None = None
        loop = asyncio.get_running_loop()
        for sig in signals or (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.set, sig)

    def set(self, sig: int | None = None) -> None:
        if self.signum is None:
            self.signum = sig
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


def stop_event(signals: Sequence[int] | None = None) -> Stop:
    """A `Stop` for the running loop (call inside it)."""
    return Stop(signals)


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    import asyncio

    return asyncio.run(main())


def exit_now(code: int) -> None:
    """Leave at once, as Go's os.Exit does, without unwinding the event loop."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# ---------------------------------------------------------------------------------------------
# nginx's default page


WELCOME_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Served by podnet for the nginx image; see docs/images.md.</em></p>
</body>
</html>
"""


def nginx_config(state_dir: str, port: int = 80) -> str:
    """A minimal nginx.conf serving the welcome page from `state_dir`/html, in the foreground,
    one process (so it needs no `user` to read the state dir), logs to stdout/stderr."""
    d = state_dir.rstrip("/")
    return f"""daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 1024; }}
http {{
    types {{ text/html html htm; text/css css; application/javascript js; }}
    default_type application/octet-stream;
    access_log /dev/stdout;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {port};
        listen [::]:{port};
        server_name localhost;
        root {d}/html;
        index index.html;
    }}
}}
"""


NGINX_BOOT = (
    "import sys; from podnet.agent.builtin import nginx_main; sys.exit(nginx_main(sys.argv[1:]))"
)


def nginx_main(argv: Sequence[str]) -> int:
    """The nginx image's default command: `[--nginx PATH] [--state-dir DIR] [--port 80]`.

    With `--nginx`, writes a minimal config and the welcome page into the state dir (a fresh
    temporary one, removed on exit, if none is given) and runs that nginx in the foreground,
    passing SIGTERM/SIGINT/SIGQUIT on. Without it, serves the same page itself."""
    try:
        flags, _ = parse_flags(argv, {"nginx": "", "state-dir": "", "port": 80})
    except FlagError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    port = int(flags["port"])
    nginx = str(flags["nginx"])
    if not nginx:
        return run(lambda: _serve_welcome(port))
    return _run_nginx(nginx, str(flags["state-dir"]), port)


async def _serve_welcome(port: int) -> int:
    page = WELCOME_PAGE.encode()

    async def handler(request: Request) -> Response:
        headers = [("Server", "nginx (podnet built-in)"), ("Content-Type", "text/html")]
        if request.path in ("/", "/index.html"):
            return Response(body=page, headers=headers)
        return Response(status=404, headers=headers, body=b"<html><head><title>404 Not Found"
                        b"</title></head><body><center><h1>404 Not Found</h1></center>"
                        b"</body></html>\n")

    stop = stop_event()
    server = await serve(handler, None, port)
    log(f"serving the nginx welcome page on port {server.port}")
    await stop.wait()
    await server.close()
    return 0


def _run_nginx(nginx: str, state_dir: str, port: int) -> int:
    import shutil
    import signal
    import subprocess
    import tempfile

    made = not state_dir
    directory = tempfile.mkdtemp(prefix="podnet-nginx-") if made else state_dir
    try:
        os.makedirs(os.path.join(directory, "html"), exist_ok=True)
        with open(os.path.join(directory, "html", "index.html"), "w") as f:
            f.write(WELCOME_PAGE)
        conf = os.path.join(directory, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_config(directory, port))
        # -e needs nginx >= 1.19.5; older ones would log to their compiled-in path first.
        child = subprocess.Popen([nginx, "-p", directory, "-c", conf, "-e", "stderr"])

        def forward(sig: int, _frame: object) -> None:
            child.send_signal(sig)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, forward)
        code = child.wait()
        return code if code >= 0 else 128 - code
    finally:
        if made:
            shutil.rmtree(directory, ignore_errors=True)


__all__ = [
    "BIND_ENV", "NGINX_BOOT", "WELCOME_PAGE", "FlagError", "HTTPServer", "Handler", "Request",
    "Response", "Stop", "bind_socket", "exit_now", "format_peer", "hostname", "listen_host", "log",
    "nginx_config", "nginx_main", "parse_duration", "parse_flags", "run", "serve",
    "split_listen", "stop_event", "text",
]
