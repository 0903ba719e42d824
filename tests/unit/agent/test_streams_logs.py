"""kubectl logs options over the stored `<RFC3339Nano> <stream> <text>` lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from podnet.agent.streams import StreamError
from podnet.agent.streams.logs import LogOptions, parse_time, render
from tests.unit.agent.test_streams_remotecommand import FakeNode

NOW = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
LINES = [
    "2026-01-02T02:58:00.000000001Z stdout booting",
    "2026-01-02T02:59:30.5Z stderr warning: slow disk",
    "2026-01-02T02:59:59.999999999Z stdout ready on :8080",
]


def opts(**query: str) -> LogOptions:
    return LogOptions.from_query(query, NOW)


def test_plain_lines_keep_both_streams() -> None:
    assert render(LINES, opts()) == b"booting\nwarning: slow disk\nready on :8080\n"


def test_timestamps_are_the_stored_ones() -> None:
    assert render(LINES[:1], opts(timestamps="true")) == \
        b"2026-01-02T02:58:00.000000001Z booting\n"


@pytest.mark.parametrize(("query", "expected"), [
    ({"tailLines": "1"}, b"ready on :8080\n"),
    ({"tailLines": "0"}, b""),
    ({"tailLines": "10"}, b"booting\nwarning: slow disk\nready on :8080\n"),
    ({"sinceSeconds": "60"}, b"warning: slow disk\nready on :8080\n"),
    ({"sinceTime": "2026-01-02T02:59:59Z"}, b"ready on :8080\n"),
    ({"sinceTime": "2026-01-02T04:59:59+02:00"}, b"ready on :8080\n"),
    ({"limitBytes": "12"}, b"booting\nwarn"),
    # The kubelet's order: tail first, then since.
    ({"tailLines": "2", "sinceSeconds": "10"}, b"ready on :8080\n"),
])
def test_options(query: dict[str, str], expected: bytes) -> None:
    assert render(LINES, opts(**query)) == expected


def test_bad_options_are_bad_requests() -> None:
    for query in ({"tailLines": "x"}, {"limitBytes": "0"}, {"sinceSeconds": "0"},
                  {"sinceSeconds": "5", "sinceTime": "2026-01-02T02:59:59Z"}):
        with pytest.raises(StreamError) as err:
            opts(**query)
        assert err.value.code == 400


def test_foreign_lines_are_kept_as_text() -> None:
    assert render(["no timestamp here"], opts(timestamps="true")) == b"no timestamp here\n"


def test_parse_time_keeps_microseconds() -> None:
    assert parse_time("2026-01-02T02:59:59.999999999Z") == \
        NOW - timedelta(microseconds=1)
    assert parse_time("yesterday") is None


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FakeNode, str]]:
    node = FakeNode(tmp_path / "app.log")
    server = TestServer(node.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield node, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_handler_previous_and_missing(served: tuple[FakeNode, str]) -> None:
    node, base = served
    assert node.log_path is not None
    node.log_path.write_text("\n".join(LINES) + "\n")
    node.log_path.with_name("app.log.1").write_text(LINES[0] + "\n")
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/containerLogs/default/web/app?tailLines=1") as r:
            assert (r.status, await r.read()) == (200, b"ready on :8080\n")
        async with s.get(f"{base}/containerLogs/default/web/app?previous=true") as r:
            assert (r.status, await r.read()) == (200, b"booting\n")
        async with s.get(f"{base}/containerLogs/default/web/other") as r:
            assert r.status == 404


async def test_handler_follows_until_the_container_stops(
        served: tuple[FakeNode, str]) -> None:
    node, base = served
    assert node.log_path is not None
    node.log_path.write_text(LINES[0] + "\n")
    async with aiohttp.ClientSession() as s, \
            s.get(f"{base}/containerLogs/default/web/app?follow=true") as r:
        assert await asyncio.wait_for(r.content.readline(), 5) == b"booting\n"
        with node.log_path.open("a") as f:
            f.write(LINES[1][:20])  # half a line is held back until its newline
            f.flush()
            await asyncio.sleep(0.3)
            f.write(LINES[1][20:] + "\n")
        assert await asyncio.wait_for(r.content.readline(), 5) == b"warning: slow disk\n"
        node.running = False
        assert await asyncio.wait_for(r.content.read(), 5) == b""
