"""Keeping CPython's full garbage collections short in processes with big caches.

A controller or agent process holds informer caches of every Service, EndpointSlice and
Pod: at 10,000 Services that is millions of tracked objects, and a full (generation 2)
collection walks all of them, a pause of about a second in which no event is handled
(bench/proxy saw an EndpointSlice arrive 1.6 s late). The cached objects are plain JSON
trees, freed by reference counting, never part of a cycle: the collector has nothing to
find among them. So the survivors of a young collection are moved out of its reach
(`gc.freeze`) now and then; young objects are still collected as usual, and a full
collection only walks what was allocated since the last freeze.

Every second, not every five: a 100-pod burst leaves tens of thousands of new survivors
in the API server within a second, and with 5 s between freezes its full collections
during the burst took 230 ms in all (up to 90 ms at once); with 1 s, 19 ms. A young
collection of an idle process costs microseconds.
"""

from __future__ import annotations

import asyncio
import gc

# Young collections after 10,000 net allocations instead of CPython's 700. A 100-pod
# burst made the API server collect generation 0 about 75 times (18 ms in all) and the
# agent 25 times (9 ms); at 10,000, 2 to 4 times (6 to 16 ms and 4 ms). The objects of a
# request die by reference counting, not as cycles, so collecting less often finds the
# same garbage. The price: cyclic garbage waits a little longer.
YOUNG_THRESHOLD = 10_000


def freeze_survivors() -> None:
    """Collect the young generations, then exempt what survived from later collections."""
    gc.collect(1)
    gc.freeze()


async def keep_frozen(stop: asyncio.Event, every: float = 1.0) -> None:
    """`freeze_survivors` every `every` seconds until `stop`, and young collections less
    often meanwhile (YOUNG_THRESHOLD; the previous thresholds come back after)."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                freeze_survivors()
    finally:
        gc.set_threshold(*before)
