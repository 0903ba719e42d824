"""The Kubernetes test image `agnhost`, written for podnet: `python -m ... agnhost <cmd> [flags]`.

Subcommands follow agnhost's README (test/images/agnhost in kubernetes/kubernetes): their
flags, defaults, endpoints and output strings, because e2e tests and users compare them.
Implemented: serve-hostname, netexec, connect, porter, pause, dns-suffix, dns-server-list,
etc-hosts, liveness, test-webserver. Deliberate differences:
- serve-hostname exits 0 on SIGTERM (upstream keeps serving for 60 s "awaiting pod deletion");
- SCTP listeners are not offered (logged and skipped); netexec's /upload answers 501;
- any listener on `:port` honours PODNET_BUILTIN_BIND (see podnet.agent.builtin).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, cast

from podnet.agent.builtin import (
    FlagError,
    FlagValue,
    Request,
    Response,
    bind_socket,
    bound_port,
    exit_now,
    format_peer,
    hostname,
    log,
    parse_duration,
    parse_flags,
    run,
    serve,
    stop_event,
    text,
)

if TYPE_CHECKING:
    import asyncio

Command = Callable[[list[str]], int]


def _flags(argv: Sequence[str], spec: dict[str, FlagValue]) -> tuple[dict[str, FlagValue],
                                                                     list[str]]:
    return parse_flags(argv, spec)


def _usage_error(exc: Exception) -> int:
    # cobra prints "Error: <problem>" and exits 1.
    sys.stderr.write(f"Error: {exc}\n")
    return 1


def _run(coro: Callable[[], Coroutine[Any, Any, int]]) -> int:
    return run(coro)


# ---------------------------------------------------------------------------------------------
# pause


def cmd_pause(argv: list[str]) -> int:
    from podnet.agent.builtin.pause import wait_for_signal

    print("Paused", flush=True)
    sig = wait_for_signal()
    import signal

    log(f"Shutting down after receiving signal: {signal.Signals(sig).name}.")
    return 0


# ---------------------------------------------------------------------------------------------
# serve-hostname


def cmd_serve_hostname(argv: list[str]) -> int:
    try:
        flags, args = _flags(argv, {"tcp": False, "udp": False, "http": True, "close": False,
                                    "port": 9376})
    except FlagError as exc:
        return _usage_error(exc)
    if args:
        return _usage_error(Exception(f"accepts at most 0 arg(s), received {len(args)}"))
    if flags["http"] and (flags["tcp"] or flags["udp"]):
        log("Can't server TCP/UDP mode and HTTP mode at the same time")
        return 1
    return _run(lambda: _serve_hostname(bool(flags["tcp"]), bool(flags["udp"]),
                                        bool(flags["http"]), bool(flags["close"]),
                                        int(flags["port"])))


async def _serve_hostname(tcp: bool, udp: bool, http: bool, close: bool, port: int) -> int:
    import asyncio

    name = hostname().encode()
    stop = stop_event()
    loop = asyncio.get_running_loop()
    closers: list[Callable[[], Awaitable[None] | None]] = []
    actual = port
    try:
        if tcp:
            async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                log(f"TCP request from {format_peer(writer.get_extra_info('peername'))}")
                writer.write(name)
                try:
                    await writer.drain()
                finally:
                    writer.close()

            sock = bind_socket(None, port)
            actual = bound_port(sock)
            tcp_server = await asyncio.start_server(on_tcp, sock=sock)
            closers.append(tcp_server.close)
        if udp:
            usock = bind_socket(None, actual, udp=True)
            actual = bound_port(usock)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _replier(lambda _data, _peer: name, "UDP request from"), sock=usock)
            closers.append(transport.close)
        if http:
            async def on_http(request: Request) -> Response:
                log(f"HTTP request from {request.remote}")
                return Response(body=name, close=close)

            http_server = await serve(on_http, None, port)
            actual = http_server.port
            closers.append(http_server.close)
    except OSError as exc:
        log(f"Error from net.Listen(): listen tcp :{port}: {exc.strerror or exc}")
        return 1
    log(f"Serving on port {actual}.")
    await stop.wait()
    log(f"Shutting down after receiving signal: {_signame(stop.signum)}.")
    for closer in closers:
        result = closer()
        if result is not None:
            await result
    return 0


def _signame(sig: int | None) -> str:
    import signal

    return signal.Signals(sig).name if sig else "shutdown"


Answer = Callable[[bytes, tuple[Any, ...]], bytes | None]


def _replier(answer: Answer, what: str = "") -> asyncio.DatagramProtocol:
    """A datagram protocol answering each packet with `answer(data, peer)` (None: silence)."""
    import asyncio

    class Reply(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # The selector loop's datagram transport does not subclass DatagramTransport.
            self.transport = cast("asyncio.DatagramTransport", transport)

        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            if what:
                log(f"{what} {format_peer(addr)}")
            reply = answer(data, addr)
            if reply is not None and self.transport is not None:
                self.transport.sendto(reply, addr)

        def error_received(self, exc: Exception) -> None:
            log(f"UDP error: {exc}")

    return Reply()


# ---------------------------------------------------------------------------------------------
# netexec


def cmd_netexec(argv: list[str]) -> int:
    try:
        flags, args = _flags(argv, {
            "http-port": 8080, "udp-port": 8081, "sctp-port": -1, "tls-cert-file": "",
            "tls-private-key-file": "", "http-override": "", "udp-listen-addresses": "",
            "delay-shutdown": 0, "shell-path": "/bin/sh",
        })
    except FlagError as exc:
        return _usage_error(exc)
    if args:
        return _usage_error(Exception(f"accepts at most 0 arg(s), received {len(args)}"))
    return _run(lambda: Netexec(flags).main())


class Netexec:
    def __init__(self, flags: dict[str, FlagValue]) -> None:
        self.http_port = int(flags["http-port"])
        self.udp_port = int(flags["udp-port"])
        self.sctp_port = int(flags["sctp-port"])
        self.cert = str(flags["tls-cert-file"])
        self.key = str(flags["tls-private-key-file"])
        self.override = str(flags["http-override"])
        self.udp_addresses = [a.strip() for a in str(flags["udp-listen-addresses"]).split(",")
                              if a.strip()]
        self.delay_shutdown = int(flags["delay-shutdown"])
        self.shell = str(flags["shell-path"])
        self.ready = False
        self.terminating = False
        self.exit_code: int | None = None

    async def main(self) -> int:
        import asyncio

        stop = stop_event()
        self._stop = stop
        loop = asyncio.get_running_loop()
        ssl_context = None
        if self.cert:
            import ssl

            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.cert, self.key or None)
        try:
            self.server = await serve(self.handle, None, self.http_port, ssl_context)
        except OSError as exc:
            log(f"listen tcp :{self.http_port}: {exc.strerror or exc}")
            return 1
        log(f"Started HTTP server on port {self.server.port}")
        transports = []
        if self.udp_port != -1:
            for address in self.udp_addresses or [""]:
                try:
                    usock = bind_socket(address or None, self.udp_port, udp=True)
                except OSError as exc:
                    log(f"Error occurred: failed to create listener for UDP address "
                        f"{address}:{self.udp_port}:{exc.strerror or exc}")
                    return 1
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _replier(self.udp_answer), sock=usock)
                transports.append(transport)
                log(f"Started UDP server on port {address} {bound_port(usock)}")
        if self.sctp_port != -1:
            log(f"SCTP is not offered by podnet's agnhost; --sctp-port={self.sctp_port} ignored")
        self.ready = True
        await stop.wait()
        if self.exit_code is None:  # a signal, not /exit
            self.terminating = True
            log(f"Received {_signame(stop.signum)}, shutting down")
            if self.delay_shutdown > 0:
                log(f"Sleeping {self.delay_shutdown} seconds before terminating...")
                await asyncio.sleep(self.delay_shutdown)
        for t in transports:
            t.close()
        await self.server.close(timeout=self._grace)
        return self.exit_code or 0

    _grace = 5.0

    def udp_answer(self, data: bytes, peer: tuple[Any, ...]) -> bytes | None:

        # Upstream lower-cases the whole datagram, the echoed text included.
        said = data.decode("utf-8", "replace").strip().lower()
        if said == "hostname":
            return hostname().encode()
        if said.startswith("echo "):
            return said.split(" ", 1)[1].encode()
        if said == "clientip":
            return format_peer(peer).encode()
        if said:
            log(f"Unknown UDP command received from {format_peer(peer)}: {said}")
        return None

    async def handle(self, request: Request) -> Response:

        if self.override:
            from urllib.parse import parse_qs, urlsplit

            url = urlsplit(self.override)
            request.method = "GET"
            request.target = self.override
            request.path = url.path or "/"
            request.query = parse_qs(url.query, keep_blank_values=True)
        route = {
            "/clientip": self.clientip, "/serverport": self.serverport, "/dial": self.dial,
            "/echo": self.echo, "/header": self.header, "/exit": self.exit,
            "/healthz": self.healthz, "/readyz": self.readyz, "/hostname": self.hostname,
            "/hostName": self.hostname,
            "/redirect": self.redirect, "/shell": self.shell_cmd, "/shutdown": self.shutdown,
            "/upload": self.upload,
        }.get(request.path, self.root)
        return await route(request)

    async def root(self, request: Request) -> Response:
        import datetime as dt


        now = dt.datetime.now().astimezone()
        return text(f"NOW: {now:%Y-%m-%d %H:%M:%S.%f}000 {now:%z} {now.tzname()}")

    async def clientip(self, request: Request) -> Response:

        return text(request.remote)

    async def serverport(self, request: Request) -> Response:

        return text(str(request.server_port))

    async def hostname(self, request: Request) -> Response:

        return text(hostname())

    async def echo(self, request: Request) -> Response:

        msg, code = request.arg("msg"), request.arg("code")
        if code:
            try:
                return text(msg, int(code))
            except ValueError:
                return text(f"argument 'code' must be an integer or empty, got {code!r}\n")
        return text(msg)

    async def header(self, request: Request) -> Response:
        return text(request.headers.get(request.arg("key").lower(), ""))

    async def healthz(self, request: Request) -> Response:

        return Response(status=200 if self.ready else 412)

    async def readyz(self, request: Request) -> Response:

        return Response(status=503 if self.terminating or not self.ready else 200)

    async def redirect(self, request: Request) -> Response:

        location, code = request.arg("location"), request.arg("code")
        status = 302
        if code:
            try:
                status = int(code)
            except ValueError:
                return text(f"argument 'code' must be an integer or empty, got {code!r}\n")
        body = b""
        if request.method in ("GET", "HEAD"):
            body = f'<a href="{location}">Redirect</a>.\n\n'.encode()
        return Response(status=status, body=body, headers=[("Location", location)])

    async def shell_cmd(self, request: Request) -> Response:
        import asyncio
        import json


        cmd = request.arg("shellCommand") or request.arg("cmd")
        log(f"GET /shell?cmd={cmd}")
        proc = await asyncio.create_subprocess_exec(
            self.shell, "-c", cmd, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        result: dict[str, str] = {}
        if out:
            result["output"] = out.decode("utf-8", "replace")
        if proc.returncode:
            rc = proc.returncode
            result["error"] = f"exit status {rc}" if rc > 0 else f"signal: {_signame(-rc)}"
        return text(json.dumps(result, sort_keys=True, separators=(",", ":")),
                    417 if proc.returncode else 200)

    async def dial(self, request: Request) -> Response:
        import json


        host, port = request.arg("host"), request.arg("port")
        what, protocol = request.arg("request"), request.arg("protocol").lower() or "http"
        tries_s = request.arg("tries")
        log(f"GET /dial?host={host}&protocol={protocol}&port={port}&request={what}"
            f"&tries={tries_s}")
        try:
            tries = int(tries_s) if tries_s else 1
        except ValueError:
            return text(f"tries parameter is invalid. strconv.Atoi: parsing {tries_s!r}: "
                        "invalid syntax\n", 400)
        if not what:
            return text("request parameter not specified. <nil>\n", 400)
        if protocol not in ("http", "udp"):
            return text(f"unsupported protocol. {protocol}\n", 400)
        if not port.isdigit() or int(port) > 65535:
            return text(f"host and/or port param are invalid. address {host}:{port}: "
                        "invalid port\n", 400)
        dialer = _dial_http if protocol == "http" else _dial_udp
        responses: list[str] = []
        errors: list[str] = []
        ok = False
        for _ in range(tries):
            try:
                responses.append(await dialer(what, host, int(port)))
                ok = True
            except _DialError as exc:
                errors.append(str(exc))
                ok = False
        out: dict[str, list[str]] = {}
        if responses:
            out["responses"] = responses
        if errors:
            out["errors"] = errors
        return text(json.dumps(out, sort_keys=True, separators=(",", ":")),
                    200 if ok else 417)

    async def exit(self, request: Request) -> Response:
        import asyncio

        code_s, timeout_s, wait_s = request.arg("code"), request.arg("timeout"), request.arg(
            "wait")
        log(f"GET /exit?code={code_s}&timeout={timeout_s}&wait={wait_s}")
        try:
            timeout = parse_duration(timeout_s) if timeout_s else 0.0
        except ValueError:
            return text("argument 'timeout' must be a valid golang duration or empty, "
                        f"got {timeout_s!r}\n")
        try:
            wait = parse_duration(wait_s) if wait_s else 0.0
        except ValueError:
            return text(f"argument 'wait' must be a valid golang duration or empty, "
                        f"got {wait_s!r}\n")
        try:
            code = int(code_s) if code_s else 0
        except ValueError:
            return text(f"argument 'code' must be an integer [0-127] or empty, got {code_s!r}\n")
        if wait > 0:
            await asyncio.sleep(wait)
        if timeout <= 0:
            exit_now(code)  # upstream exits inside the handler: the client sees no response
        self.exit_code = code
        self._grace = timeout
        self._stop.set()
        return Response(close=True)

    async def shutdown(self, request: Request) -> Response:
        log("GET /shutdown")
        exit_now(0)
        raise AssertionError("unreachable")

    async def upload(self, request: Request) -> Response:

        return text('{"error":"podnet\'s agnhost does not implement /upload"}', 501)


class _DialError(Exception):
    pass


def _oserror(exc: OSError) -> str:
    """The error text Go would print ("connection refused"), not asyncio's wrapper text."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc).lower()


async def _dial_http(what: str, host: str, port: int) -> str:
    import asyncio

    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{hostport}/{what}"
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"GET /{what} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: "
                             "Go-http-client/1.1\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                return (await _read_body(head, reader)).decode("utf-8", "replace")
            finally:
                writer.close()
    except TimeoutError:
        raise _DialError(f'Get "{url}": context deadline exceeded (Client.Timeout exceeded '
                         "while awaiting headers)") from None
    except OSError as exc:
        raise _DialError(f'Get "{url}": dial tcp {hostport}: connect: {_oserror(exc)}') from None
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise _DialError(f'Get "{url}": {exc}') from None


async def _read_body(head: bytes, reader: object) -> bytes:
    import asyncio

    assert isinstance(reader, asyncio.StreamReader)
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


async def _dial_udp(what: str, host: str, port: int) -> str:
    import asyncio

    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(data)

        def error_received(self, exc: Exception) -> None:
            if not got.done():
                got.set_exception(exc)

    try:
        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, port))
    except OSError as exc:
        raise _DialError(f"udp dial failed. err:{exc}") from None
    try:
        transport.sendto(what.encode())
        async with asyncio.timeout(5):
            data = await got
    except TimeoutError:
        raise _DialError(f"reading from udp connection failed. err:'read udp "
                         f"{host}:{port}: i/o timeout'") from None
    except OSError as exc:
        raise _DialError(f"reading from udp connection failed. err:'read udp {host}:{port}: "
                         f"{_oserror(exc)}'") from None
    finally:
        transport.close()
    if not data:
        raise _DialError("reading from udp connection failed. err:'<nil>'")
    return data.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# connect


def cmd_connect(argv: list[str]) -> int:
    try:
        flags, args = _flags(argv, {"timeout": 0.0, "protocol": "tcp", "udp-data": "hostname",
                                    "sctp-data": "hostname"})
    except FlagError as exc:
        sys.stderr.write(f"UNKNOWN: {exc}\n")
        return 1
    if len(args) != 1:
        return _usage_error(Exception(f"accepts 1 arg(s), received {len(args)}"))
    protocol = str(flags["protocol"]) or "tcp"
    timeout = float(flags["timeout"]) or None
    if protocol == "tcp":
        return _connect_tcp(args[0], timeout)
    if protocol == "udp":
        return _connect_udp(args[0], timeout, str(flags["udp-data"]))
    sys.stderr.write(f"Unsupported protocol\n{protocol}")
    return 1


def _split_hostport(dest: str) -> tuple[str, int]:
    host, sep, port = dest.rpartition(":")
    if not sep:
        raise ValueError(f"address {dest}: missing port in address")
    if host.startswith("["):
        host = host[1:-1] if host.endswith("]") else host
    elif ":" in host:
        raise ValueError(f"address {dest}: too many colons in address")
    if not port.isdigit():
        raise ValueError(f"address {dest}: invalid port")
    return host, int(port)


def _connect_tcp(dest: str, timeout: float | None) -> int:
    import errno
    import socket

    try:
        host, port = _split_hostport(dest)
    except ValueError as exc:
        sys.stderr.write(f"UNKNOWN: {exc}\n")
        return 1
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        sys.stderr.write(f"DNS: lookup {host}: {exc.strerror or exc}\n")
        return 1
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    try:
        sock.connect(addr)
        return 0
    except TimeoutError:
        sys.stderr.write("TIMEOUT\n")
        return 1
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            sys.stderr.write("REFUSED\n")
        else:
            sys.stderr.write(f"OTHER: dial tcp {dest}: connect: {_oserror(exc)}\n")
        return 1
    finally:
        sock.close()


def _connect_udp(dest: str, timeout: float | None, data: str) -> int:
    import socket

    try:
        host, port = _split_hostport(dest)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"DNS: {exc}\n")
        return 1
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    try:
        sock.connect(addr)
        sock.send(f"{data}\n".encode())
        if not sock.recv(1024):
            sys.stderr.write("OTHER: No data received from the server. Cannot guarantee the "
                             "server received the request.\n")
            return 1
        return 0
    except TimeoutError:
        sys.stderr.write(f"TIMEOUT: read udp {dest}: i/o timeout\n")
        return 1
    except ConnectionRefusedError as exc:
        sys.stderr.write(f"REFUSED: read udp {dest}: {exc.strerror}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"UNKNOWN: {exc}\n")
        return 1
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------------
# porter


_PORTER_PREFIXES = ("SERVE_PORT_", "SERVE_TCP_PORT_", "SERVE_UDP_PORT_", "SERVE_TLS_PORT_",
                    "SERVE_SCTP_PORT_")


def porter_plan(environ: dict[str, str]) -> list[tuple[str, int, str]]:
    """(kind, port, value) for every SERVE_*PORT_<n> variable; kind is tcp, udp, tls or sctp."""
    plan = []
    for key, value in sorted(environ.items()):
        for prefix in _PORTER_PREFIXES:
            if key.startswith(prefix) and key[len(prefix):].isdigit():
                kind = prefix[len("SERVE_"):-len("PORT_")].rstrip("_").lower() or "tcp"
                plan.append((kind, int(key[len(prefix):]), value))
                break
    return plan


def cmd_porter(argv: list[str]) -> int:
    try:
        flags, args = _flags(argv, {"json-response": False})
    except FlagError as exc:
        return _usage_error(exc)
    if args:
        return _usage_error(Exception(f"accepts at most 0 arg(s), received {len(args)}"))
    return _run(lambda: _porter(porter_plan(dict(os.environ)), bool(flags["json-response"])))


async def _porter(plan: list[tuple[str, int, str]], as_json: bool) -> int:
    import asyncio
    import json

    stop = stop_event()
    loop = asyncio.get_running_loop()
    closers: list[Callable[[], Awaitable[None] | None]] = []

    def http_handler(value: str) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if as_json:
                body = json.dumps({"Method": request.method, "Body": value},
                                  separators=(",", ":"))
                return Response(body=body.encode(),
                                headers=[("Content-Type", "application/json")])
            return Response(body=value.encode())
        return handle

    for kind, port, value in plan:
        try:
            if kind in ("tcp", "tls"):
                ssl_context = None
                if kind == "tls":
                    import ssl

                    ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    ssl_context.load_cert_chain(os.environ.get("CERT_FILE", "localhost.crt"),
                                                os.environ.get("KEY_FILE", "localhost.key"))
                server = await serve(http_handler(value), None, port, ssl_context)
                closers.append(server.close)
                log(f"Started {kind.upper()} server on port {server.port}")
            elif kind == "udp":
                reply = value.encode()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda r=reply: _replier(lambda _d, _p: r),  # type: ignore[misc]
                    sock=bind_socket(None, port, udp=True))
                closers.append(transport.close)
                log(f"Started UDP server on port {port}")
            else:
                log(f"SCTP is not offered by podnet's agnhost; port {port} not served")
        except OSError as exc:
            log(f"server on port \"{port}\" failed: {exc.strerror or exc}")
    await stop.wait()
    for closer in closers:
        result = closer()
        if result is not None:
            await result
    return 0


# ---------------------------------------------------------------------------------------------
# DNS and /etc files


def resolv_conf(text: str) -> tuple[list[str], list[str]]:
    """(search domains, nameservers) from resolv.conf text; the last search line wins."""
    search: list[str] = []
    servers: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
    return search, servers


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def cmd_dns_suffix(argv: list[str]) -> int:
    print(",".join(resolv_conf(_read("/etc/resolv.conf"))[0]))
    return 0


def cmd_dns_server_list(argv: list[str]) -> int:
    print(",".join(resolv_conf(_read("/etc/resolv.conf"))[1]))
    return 0


def cmd_etc_hosts(argv: list[str]) -> int:
    sys.stdout.write(_read("/etc/hosts"))
    return 0


# ---------------------------------------------------------------------------------------------
# liveness and test-webserver


def cmd_liveness(argv: list[str]) -> int:
    return _run(_liveness)


async def _liveness() -> int:
    import time

    started = time.monotonic()

    async def handle(request: Request) -> Response:
        if request.path != "/healthz":
            return text("404 page not found\n", 404)
        alive = time.monotonic() - started
        if alive > 10:
            return text(f"error: {alive:.6f}s", 500)
        return text("ok")

    stop = stop_event()
    server = await serve(handle, None, 8080)
    log(f"Serving on port {server.port}")
    await stop.wait()
    await server.close()
    return 0


def cmd_test_webserver(argv: list[str]) -> int:
    try:
        flags, _ = _flags(argv, {"port": 80})
    except FlagError as exc:
        return _usage_error(exc)
    return _run(lambda: _test_webserver(int(flags["port"])))


async def _test_webserver(port: int) -> int:
    import posixpath

    async def handle(request: Request) -> Response:
        from urllib.parse import unquote

        path = posixpath.normpath("/" + unquote(request.path))
        if not os.path.isfile(path):
            return text("404 page not found\n", 404)
        with open(path, "rb") as f:
            return Response(body=f.read())

    stop = stop_event()
    server = await serve(handle, None, port)
    log(f"Serving on port {server.port}")
    await stop.wait()
    await server.close()
    return 0


# ---------------------------------------------------------------------------------------------


COMMANDS: dict[str, Command] = {
    "connect": cmd_connect,
    "dns-server-list": cmd_dns_server_list,
    "dns-suffix": cmd_dns_suffix,
    "etc-hosts": cmd_etc_hosts,
    "liveness": cmd_liveness,
    "netexec": cmd_netexec,
    "pause": cmd_pause,
    "porter": cmd_porter,
    "serve-hostname": cmd_serve_hostname,
    "test-webserver": cmd_test_webserver,
}


def usage() -> str:
    return ("agnhost (podnet) - the Kubernetes test image's subcommands, run as host "
            "processes.\n\nUsage:\n  agnhost [command]\n\nAvailable Commands:\n"
            + "".join(f"  {name}\n" for name in sorted(COMMANDS)) + "  help\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("help", "-h", "--help"):
        sys.stdout.write(usage())
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        sys.stderr.write(f'Error: unknown command "{args[0]}" for "agnhost"\n'
                         "Run 'agnhost --help' for usage.\n")
        return 1
    try:
        return command(args[1:])
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
