"""util.heap: survivors of a young collection are exempted from later ones."""

from __future__ import annotations

import asyncio
import gc

from podnet.util import heap


def test_freeze_survivors_moves_live_objects_out_of_the_collectors_reach() -> None:
    cache = [{"metadata": {"name": f"svc-{i}"}} for i in range(1000)]
    before = gc.get_freeze_count()
    try:
        heap.freeze_survivors()
        assert gc.get_freeze_count() >= before + len(cache)
    finally:
        gc.unfreeze()


async def test_keep_frozen_stops_with_its_event() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(heap.keep_frozen(stop, every=0.01))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert gc.get_freeze_count() > 0
    gc.unfreeze()


async def test_young_collections_are_rarer_while_it_runs() -> None:
    before = gc.get_threshold()
    stop = asyncio.Event()
    task = asyncio.create_task(heap.keep_frozen(stop, every=10))
    await asyncio.sleep(0)
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *before[1:])
    stop.set()
    await asyncio.wait_for(task, 1)
    assert gc.get_threshold() == before
