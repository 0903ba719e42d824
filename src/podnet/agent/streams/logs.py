"""Container logs: `kubectl logs` options over the agent's per-container log file.

The runtime writes one line per output line: `<RFC3339Nano> <stdout|stderr> <text>`.
The previous instance of a container (`--previous`) is the same file name plus `.1`.

`LogOptions.from_query` reads the kubelet's query parameters; `render` is the pure
filter (tail, since, timestamps, limitBytes, in the kubelet's order: tail picks the last
N lines first, then `since` drops older ones, then the byte limit cuts, mid-line if it
must); `stream_logs` is the aiohttp handler body that also follows a running container.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from aiohttp import web

from podnet.agent.streams import StreamError

_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")
FOLLOW_POLL = 0.1  # seconds between looks at a followed file


@dataclass(frozen=True, slots=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: datetime | None = None  # from sinceSeconds (against `now`) or sinceTime
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], now: datetime) -> LogOptions:
        """Options from `?follow=true&tailLines=10&...`; bad values raise StreamError 400."""

        def flag(name: str) -> bool:
            return query.get(name, "").lower() in ("true", "1")

        def number(name: str, minimum: int) -> int | None:
            raw = query.get(name)
            if raw is None or raw == "":
                return None
            try:
                value = int(raw)
            except ValueError:
                raise StreamError(f"{name}: invalid value {raw!r}", 400, "BadRequest") from None
            if value < minimum:
                raise StreamError(f"{name}: must be greater than or equal to {minimum}", 400,
                                  "BadRequest")
            return value

        since: datetime | None = None
        seconds = number("sinceSeconds", 1)
        if seconds is not None:
            since = now - timedelta(seconds=seconds)
        if query.get("sinceTime"):
            if seconds is not None:
                raise StreamError("at most one of sinceTime or sinceSeconds may be specified",
                                  400, "BadRequest")
            since = parse_time(query["sinceTime"])
            if since is None:
                raise StreamError(f"sinceTime: invalid value {query['sinceTime']!r}", 400,
                                  "BadRequest")
        return cls(follow=flag("follow"), previous=flag("previous"),
                   timestamps=flag("timestamps"), tail_lines=number("tailLines", 0),
                   since=since, limit_bytes=number("limitBytes", 1))


def parse_time(text: str) -> datetime | None:
    """RFC 3339 with any number of fraction digits (Python keeps microseconds)."""
    m = _TS.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = UTC
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=tz)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LogLine:
    timestamp: str
    stream: str
    text: str

    @classmethod
    def parse(cls, line: str) -> LogLine:
        """One stored line; a line not in the stored format is kept as stdout text."""
        line = line.rstrip("\n")
        ts, _, rest = line.partition(" ")
        stream, _, text = rest.partition(" ")
        if parse_time(ts) is None or stream not in ("stdout", "stderr"):
            return cls("", "stdout", line)
        return cls(ts, stream, text)

    def render(self, timestamps: bool) -> bytes:
        if timestamps and self.timestamp:
            return f"{self.timestamp} {self.text}\n".encode()
        return f"{self.text}\n".encode()


def select(lines: Iterable[str], opts: LogOptions) -> list[LogLine]:
    """The stored lines to show, before the byte limit: tail first, then since."""
    parsed = [LogLine.parse(x) for x in lines]
    if opts.tail_lines is not None:
        parsed = parsed[max(0, len(parsed) - opts.tail_lines):] if opts.tail_lines else []
    if opts.since is not None:
        since = opts.since
        parsed = [p for p in parsed if _not_before(p, since)]
    return parsed


def _not_before(line: LogLine, since: datetime) -> bool:
    ts = parse_time(line.timestamp)
    return ts is None or ts >= since


def render(lines: Iterable[str], opts: LogOptions) -> bytes:
    """The whole response body for a non-following request (pure)."""
    out = b"".join(p.render(opts.timestamps) for p in select(lines, opts))
    return out[:opts.limit_bytes] if opts.limit_bytes is not None else out


@dataclass(frozen=True, slots=True)
class LogFile:
    """Where a container's log is, and whether the container still writes to it."""

    path: Path
    running: Callable[[], bool]


# resolve(namespace, pod, container) -> LogFile, or StreamError (404 for no such pod).
ResolveLog = Callable[[str, str, str], Awaitable[LogFile]]


def previous_path(path: Path) -> Path:
    return path.with_name(path.name + ".1")


async def stream_logs(request: web.Request, target: LogFile, container: str, pod: str,
                      now: datetime | None = None) -> web.StreamResponse:
    """Answer a containerLogs request: the selected lines, then (with follow) new lines
    as they are written, until the container stops or the client goes away."""
    opts = LogOptions.from_query(request.query, now or datetime.now(UTC))
    path = previous_path(target.path) if opts.previous else target.path
    if not path.exists():
        if opts.previous:
            raise StreamError(f'previous terminated container "{container}" in pod "{pod}" '
                              "not found", 400, "BadRequest")
        raise StreamError(f'container "{container}" in pod "{pod}" is waiting to start: '
                          "ContainerCreating", 400, "BadRequest")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    left = opts.limit_bytes
    with path.open("rb") as f:
        complete, sep, pending = f.read().rpartition(b"\n")
        lines = _lines(complete) if sep else []
        if pending and not target.running():
            lines.append(pending.decode(errors="replace"))  # a last line without "\n"
            pending = b""
        body = render(lines, opts)
        if body:
            await resp.write(body)
        if left is not None:
            left -= len(body)
        # Follow the current file of a running container: tail and since applied to the
        # backlog, new lines shown as they come; limitBytes counts across both.
        follow = opts.follow and not opts.previous
        while follow and (left is None or left > 0):
            chunk = f.read()
            if not chunk:
                if request.transport is None or request.transport.is_closing():
                    return resp  # the client left while the log was quiet
                if target.running():
                    await asyncio.sleep(FOLLOW_POLL)
                    continue
                chunk = f.read()  # what was written just before it stopped
                if not chunk:
                    break
            pending += chunk
            if b"\n" not in pending:
                continue
            complete, _, pending = pending.rpartition(b"\n")
            out = b"".join(LogLine.parse(x).render(opts.timestamps) for x in _lines(complete))
            if left is not None:
                out = out[:left]
                left -= len(out)
            try:
                await resp.write(out)
            except (ConnectionError, RuntimeError):
                return resp
    await resp.write_eof()
    return resp


def _lines(block: bytes) -> list[str]:
    return block.decode(errors="replace").split("\n")
