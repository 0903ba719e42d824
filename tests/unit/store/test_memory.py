"""The store contract on `memory://`, plus URL parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.store.base import Store, StoreOptions
from podnet.store.memory import MemoryStore
from podnet.store.url import open_store
from podnet.testing.storekit import StoreContract


class TestMemoryContract(StoreContract):
    def new_store(self, directory: Path, options: StoreOptions) -> Store:
        return MemoryStore(options)


def test_memory_url_opens_a_memory_store() -> None:
    store = open_store("memory://?ring_size=64&keep_seconds=1.5")
    assert isinstance(store, MemoryStore)
    assert store.options.ring_size == 64
    assert store.options.keep_seconds == 1.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("etcd://127.0.0.1:2379", "not implemented yet"),
        ("postgres://db/podnet", "unknown scheme 'postgres'"),
        ("/var/lib/podnet.db", "unknown scheme ''"),
        ("memory://?ring=5", "unknown option 'ring'"),
        ("memory://?keep_revisions=lots", "is not a number"),
    ],
)
def test_bad_store_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)
