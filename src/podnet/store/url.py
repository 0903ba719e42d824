"""Choose a store backend by URL scheme, the way kine does.

    memory://                               in memory, for tests
    sqlite:///var/lib/podnet/state.db       one SQLite file (the default)
    sqlite:///tmp/x.db?synchronous=FULL&keep_revisions=50000

Query parameters tune `StoreOptions` (ring_size, keep_revisions, keep_seconds,
compact_interval, compact_batch) and, for sqlite, `synchronous` (NORMAL or FULL).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from podnet.store.base import Store, StoreOptions
from podnet.store.memory import MemoryStore
from podnet.store.sqlite import SqliteStore

_INT_OPTIONS = ("ring_size", "keep_revisions", "compact_batch")
_FLOAT_OPTIONS = ("keep_seconds", "compact_interval")


def open_store(url: str, options: StoreOptions | None = None) -> Store:
    """A new, not yet started store for `url`; raises ValueError for a bad URL.

    Options in the URL's query override those in `options`.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "etcd":
        raise ValueError(
            f"store URL {url!r}: the etcd:// backend is not implemented yet; "
            "use sqlite:///absolute/path.db or memory://"
        )
    if scheme not in ("memory", "sqlite"):
        raise ValueError(
            f"store URL {url!r}: unknown scheme {parts.scheme!r}; "
            "use sqlite:///absolute/path.db or memory://"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    synchronous = query.pop("synchronous", "NORMAL").upper()
    opts = _options(url, query, options or StoreOptions())
    if scheme == "memory":
        if synchronous != "NORMAL":
            raise ValueError(f"store URL {url!r}: synchronous applies to sqlite:// only")
        return MemoryStore(opts)
    if parts.netloc:
        raise ValueError(
            f"store URL {url!r}: sqlite needs an absolute path after three slashes, "
            f"e.g. sqlite:///{parts.netloc}{parts.path}"
        )
    if not parts.path or parts.path == "/":
        raise ValueError(f"store URL {url!r}: missing database file path")
    if synchronous == "NORMAL":
        return SqliteStore(parts.path, opts, synchronous="NORMAL")
    if synchronous == "FULL":
        return SqliteStore(parts.path, opts, synchronous="FULL")
    raise ValueError(f"store URL {url!r}: synchronous must be NORMAL or FULL")


def _options(url: str, query: dict[str, str], base: StoreOptions) -> StoreOptions:
    changes: dict[str, Any] = {}
    for name, raw in query.items():
        if name not in _INT_OPTIONS and name not in _FLOAT_OPTIONS:
            known = ", ".join((*_INT_OPTIONS, *_FLOAT_OPTIONS, "synchronous"))
            raise ValueError(f"store URL {url!r}: unknown option {name!r} (known: {known})")
        convert = int if name in _INT_OPTIONS else float
        try:
            changes[name] = convert(raw)
        except ValueError:
            raise ValueError(f"store URL {url!r}: option {name}={raw!r} is not a number") from None
    return dataclasses.replace(base, **changes)
