"""WorkQueue: dedup, one worker per key, re-add while processing, rate-limited requeue."""

from __future__ import annotations

import asyncio

import pytest

from podnet.api.errors import conflict
from podnet.client.workqueue import ExponentialBackoff, ShutDown, WorkQueue, run_worker


async def test_adds_are_deduplicated_in_order() -> None:
    q = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_in_processing_is_requeued_once_on_done() -> None:
    q = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first has it
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_get_waits_for_add_and_shutdown_wakes_waiters() -> None:
    q = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")
    assert await asyncio.wait_for(waiter, 1) == "x"
    waiter2 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter2, 1)


def test_backoff_doubles_and_is_forgotten() -> None:
    b = ExponentialBackoff(base=1, cap=5)
    assert [b.when("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    assert b.when("other") == 1
    b.forget("k")
    assert b.when("k") == 1


async def test_rate_limited_requeue_uses_injected_sleep() -> None:
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)

    q = WorkQueue(sleep=fake_sleep, backoff=ExponentialBackoff(base=0.25))
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    await asyncio.sleep(0.01)
    assert slept == [0.25, 0.5]
    assert len(q) == 1
    assert q.num_requeues("k") == 2


async def test_worker_retries_conflicts_and_forgets_on_success() -> None:
    calls: list[str] = []

    async def no_sleep(d: float) -> None:
        return None

    async def sync(key: str) -> None:
        calls.append(key)
        if len(calls) < 3:
            raise conflict("pods", key)

    q = WorkQueue(sleep=no_sleep)
    q.add("ns/a")
    worker = asyncio.create_task(run_worker(q, sync))
    for _ in range(100):
        if len(calls) == 3 and not q.processing():
            break
        await asyncio.sleep(0.001)
    assert calls == ["ns/a"] * 3
    assert q.num_requeues("ns/a") == 0
    q.shutdown()
    await asyncio.wait_for(worker, 1)
