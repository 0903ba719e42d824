"""Server-side apply and `metadata.managedFields`, after sigs.k8s.io/structured-merge-diff.

Each field manager owns a set of field paths. A path is a tuple of fieldsV1 elements:
`f:<field>` for a struct field or map key, `k:{"port":80,"protocol":"TCP"}` for an element
of an associative list (`x-kubernetes-list-type: map`, keyed by `x-kubernetes-list-map-keys`),
`v:<json>` for an element of a set list. Atomic lists, atomic maps and scalars are leaves.

- `server_side_apply` merges an applied configuration into the live object, removes what
  the same manager applied last time but left out now (unless someone else owns it), and
  refuses to change fields other managers own (409, unless forced).
- `record_update` does the bookkeeping for ordinary create/update/patch: the writer takes
  ownership of every field it added or changed, as `operation: Update`, so a later apply
  can detect conflicts and `kubectl get --show-managed-fields` looks like Kubernetes'.

Without a schema (custom resources) maps are granular and lists atomic, as SMD's deduced
type does.

Known simplifications (documented, not hidden):
- status is never owned through the main resource and only status is owned through the
  `status` subresource (Kubernetes' reset-fields strategies, applied to every kind);
- an update's "newly created" intermediate nodes (`.: {}` entries) use a heuristic for Go's
  non-pointer structs: only top-level structs (`spec`, `status`) count as pre-existing;
- missing list-map key fields default only for `protocol` ("TCP"), the one case kubectl
  manifests hit (ports without a protocol);
- Update managers are not capped at 10 (no "ancient-changes" entry); no version
  conversion of managed sets (every manager is read as if it used the object's version).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from podnet.api.errors import Cause, StatusError, bad_request
from podnet.api.schema import SchemaNode
from podnet.util import jsonutil

Path = tuple[str, ...]
JSONObj = dict[str, Any]

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"

# Never owned by anyone (structured-merge-diff's stripMetaManager; not recursive).
_STRIPPED: frozenset[Path] = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
        ("f:metadata", "f:creationTimestamp"),
        ("f:metadata", "f:selfLink"),
        ("f:metadata", "f:uid"),
        ("f:metadata", "f:clusterName"),
        ("f:metadata", "f:generation"),
        ("f:metadata", "f:managedFields"),
        ("f:metadata", "f:resourceVersion"),
    }
)
# Defaults for list-map key fields a manifest may omit (ServicePort/ContainerPort protocol).
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}
_MISSING = object()


# --- field sets ---------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def _compact_key(pairs: tuple[tuple[str, type, Any], ...]) -> str:
    """`_compact` of a list-map key (`{"type": "Ready"}`), kept: the same few keys come
    back on every write of every pod. The value's type is part of the cache key, since
    1 and True are equal to Python."""
    return _compact({name: value for name, _, value in pairs})


def _list_kind(node: SchemaNode | None) -> str:
    """`map`, `set` or `atomic` (the default for lists, as in server-side apply)."""
    if node is None:
        return "atomic"
    kind = node.list_type
    if kind == "map" and node.list_map_keys:
        return "map"
    if kind == "set":
        return "set"
    return "atomic"


def _atomic_map(node: SchemaNode | None) -> bool:
    return node is not None and node.map_type == "atomic"


def _item_element(item: Any, node: SchemaNode | None, kind: str, index: int) -> str:
    if kind == "map" and node is not None and isinstance(item, dict):
        key = {}
        for name in node.list_map_keys:
            if name in item:
                key[name] = item[name]
            elif name in _KEY_DEFAULTS:
                key[name] = _KEY_DEFAULTS[name]
        if all(isinstance(v, str | int | float) or v is None for v in key.values()):
            return "k:" + _compact_key(tuple((k, type(v), v) for k, v in sorted(key.items())))
        return "k:" + _compact(key)
    if kind == "set":
        return "v:" + _compact(item)
    return f"i:{index}"


def _child(node: SchemaNode | None, key: str) -> SchemaNode | None:
    return node.child(key) if node is not None else None


def _declared(node: SchemaNode | None, key: str) -> bool:
    return node is not None and node.field(key) is not None


def field_set(obj: Any, node: SchemaNode | None) -> set[Path]:
    """Every path `obj` sets, as an applier of `obj` would own it (SMD's ToFieldSet).

    Scalars, atomic lists and maps, list elements, map entries and empty or null values
    are members; struct fields that hold a non-empty object are only reached through.
    """
    out: set[Path] = set()
    _to_set(obj, node, (), out)
    return out


def _to_set(value: Any, node: SchemaNode | None, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict):
        if _atomic_map(node):
            out.add(path)
            return
        for key, sub in value.items():
            p = (*path, "f:" + key)
            _to_set(sub, _child(node, key), p, out)
            if sub is None or (isinstance(sub, dict) and not sub) or not _declared(node, key):
                out.add(p)
    elif isinstance(value, list):
        kind = _list_kind(node)
        if kind == "atomic":
            out.add(path)
            return
        items = node.items() if node is not None else None
        for i, item in enumerate(value):
            p = (*path, _item_element(item, node, kind, i))
            _to_set(item, items, p, out)
            out.add(p)
    else:
        out.add(path)


def _filter(paths: set[Path], subresource: str) -> set[Path]:
    """Drop stripped metadata and the half of the object this endpoint may not own."""
    out = set()
    for p in paths:
        if not p or p in _STRIPPED:
            continue
        is_status = p[0] == "f:status"
        if subresource == "status" and not is_status:
            continue
        if subresource == "" and is_status:
            continue
        out.add(p)
    return out


def _value_key(v: Any) -> tuple[int, float, str]:
    if v is None:
        return (0, 0.0, "")
    if isinstance(v, bool):
        return (1, float(v), "")
    if isinstance(v, int | float):
        return (2, float(v), "")
    if isinstance(v, str):
        return (3, 0.0, v)
    return (4, 0.0, _compact(v))


@functools.lru_cache(maxsize=8192)
def _element_order(pe: str) -> tuple[int, tuple[tuple[str, tuple[int, float, str]], ...]]:
    """Sort order of path elements: fields, then keys, values, indices (as SMD sorts).
    Cached: every write sorts the same few hundred elements, and keys decode JSON."""
    kind, _, rest = pe.partition(":")
    if kind == "f":
        return (0, ((rest, (0, 0.0, "")),))
    if kind == "k":
        key = json.loads(rest)
        return (1, tuple((name, _value_key(key[name])) for name in sorted(key)))
    if kind == "v":
        return (2, (("", _value_key(json.loads(rest))),))
    if kind == "i":
        return (3, (("", (2, float(rest), "")),))
    return (4, ((pe, (0, 0.0, "")),))


@dataclass
class _Trie:
    member: bool = False
    children: dict[str, _Trie] = field(default_factory=dict)


def _trie(paths: set[Path]) -> _Trie:
    root = _Trie()
    for p in paths:
        cur = root
        for pe in p:
            cur = cur.children.setdefault(pe, _Trie())
        cur.member = True
    return root


_MEMBER = object()  # marks a member among a nested dict's path-element keys


def to_fields_v1(paths: set[Path]) -> JSONObj:
    """The `fieldsV1` trie: `{}` for a member leaf, `".": {}` for a member with children.
    Built as plain nested dicts (every write renders one or two of these)."""
    root: dict[Any, Any] = {}
    for p in paths:
        cur = root
        for pe in p:
            nxt = cur.get(pe)
            if nxt is None:
                nxt = cur[pe] = {}
            cur = nxt
        cur[_MEMBER] = True

    def render(d: dict[Any, Any]) -> JSONObj:
        member = d.pop(_MEMBER, False)
        out: JSONObj = {}
        if member and d:
            out["."] = {}
        for pe in sorted(d, key=_element_order):
            out[pe] = render(d[pe])
        return out

    return render(root)


def from_fields_v1(fields: Any) -> set[Path]:
    """Inverse of `to_fields_v1`; malformed parts are ignored."""
    out: set[Path] = set()

    def walk(f: Any, prefix: Path) -> None:
        if not isinstance(f, dict):
            return
        for key, sub in f.items():
            if key == ".":
                if prefix:
                    out.add(prefix)
                continue
            p = (*prefix, key)
            if not sub:
                out.add(p)
            else:
                walk(sub, p)

    walk(fields, ())
    return out


def _iterate(paths: set[Path]) -> Iterator[Path]:
    """SMD's Set.Iterate order: at each level members first, then child subtrees, sorted."""

    def walk(t: _Trie, prefix: Path) -> Iterator[Path]:
        names = sorted(t.children, key=_element_order)
        for pe in names:
            if t.children[pe].member:
                yield (*prefix, pe)
        for pe in names:
            if t.children[pe].children:
                yield from walk(t.children[pe], (*prefix, pe))

    yield from walk(_trie(paths), ())


def path_string(path: Path) -> str:
    """`.spec.ports[port=80,protocol="TCP"].targetPort`, as fieldpath.Path prints it."""
    parts = []
    for pe in path:
        kind, _, rest = pe.partition(":")
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            key = json.loads(rest)
            inner = ",".join(f"{name}={_compact(key[name])}" for name in sorted(key))
            parts.append(f"[{inner}]")
        elif kind == "v":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


def fields_of(obj: JSONObj, node: SchemaNode | None, subresource: str = "") -> JSONObj:
    """The fieldsV1 an applier of `obj` would own (metadata bookkeeping fields left out)."""
    return to_fields_v1(_filter(field_set(obj, node), subresource))


# --- merging, comparing, pruning -------------------------------------------------------------


def _eq(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, but 1 equals 1.0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list | bool) or isinstance(b, dict | list | bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _index_items(values: list[Any], node: SchemaNode | None, kind: str) -> dict[str, Any]:
    return {_item_element(v, node, kind, i): v for i, v in enumerate(values)}


def _merge(live: Any, config: Any, node: SchemaNode | None) -> Any:
    """Config over live: granular maps merge, associative and set lists merge per element,
    everything else is replaced by the config's value."""
    if isinstance(config, dict):
        if not isinstance(live, dict) or _atomic_map(node):
            return _drop_nulls(jsonutil.deepcopy(config))
        out = dict(live)
        for key, sub in config.items():
            if sub is None:
                out.pop(key, None)
            else:
                out[key] = _merge(live.get(key, _MISSING), sub, _child(node, key))
        return out
    if isinstance(config, list):
        kind = _list_kind(node)
        if kind == "atomic" or not isinstance(live, list):
            return jsonutil.deepcopy(config)
        return _merge_list(live, config, node, kind)
    return config


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _merge_list(
    live: list[Any], config: list[Any], node: SchemaNode | None, kind: str
) -> list[Any]:
    """SMD's list merge order: the config's order for shared elements, live-only elements
    kept where they were, new elements where the config puts them."""
    items = node.items() if node is not None else None
    lhs = [_item_element(v, node, kind, i) for i, v in enumerate(live)]
    rhs = [_item_element(v, node, kind, i) for i, v in enumerate(config)]
    lhs_items = dict(zip(lhs, live, strict=True))
    rhs_items = dict(zip(rhs, config, strict=True))
    shared = [pe for pe in rhs if pe in lhs_items]
    next_shared = shared.pop(0) if shared else None
    done: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            pe = lhs[li]
            if pe == rhs[ri]:
                done.add(pe)
                out.append(_merge(lhs_items[pe], rhs_items[pe], items))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in rhs_items and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lhs):
            pe = lhs[li]
            if pe not in rhs_items:
                out.append(live[li])
                li += 1
                continue
            if pe in done:
                li += 1
                continue
        if ri < len(rhs):
            pe = rhs[ri]
            done.add(pe)
            out.append(_merge(lhs_items.get(pe, _MISSING), rhs_items[pe], items))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


@dataclass
class _Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)


def _shape(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def compare(old: Any, new: Any, node: SchemaNode | None) -> _Comparison:
    """Paths added, modified (leaf values that differ) and removed between two objects."""
    out = _Comparison()
    _compare(old, new, node, (), out)
    return out


def _compare(old: Any, new: Any, node: SchemaNode | None, path: Path, out: _Comparison) -> None:
    if old is _MISSING:
        _collect(new, node, path, out.added)
        return
    if new is _MISSING:
        _collect(old, node, path, out.removed)
        return
    if isinstance(old, dict | list) and type(old) is type(new) and old == new:
        # Nothing below differs (checked at C speed: a status update leaves the whole spec
        # alone). Python's == takes true for 1, as same_object does for a whole write.
        return
    so, sn = _shape(old), _shape(new)
    leaf = (
        "scalar" in (so, sn)
        or (so != "missing" and sn != "missing" and so != sn)
        or ("list" in (so, sn) and _list_kind(node) == "atomic")
        or ("map" in (so, sn) and _atomic_map(node))
    )
    if not leaf:
        if "map" in (so, sn):
            o = old if so == "map" else {}
            n = new if sn == "map" else {}
            for key in list(o) + [k for k in n if k not in o]:
                ov, nv = o.get(key, _MISSING), n.get(key, _MISSING)
                if type(ov) is type(nv) and ov == nv:
                    continue  # unchanged (the walk below would record nothing)
                _compare(ov, nv, _child(node, key), (*path, "f:" + key), out)
        else:
            kind = _list_kind(node)
            items = node.items() if node is not None else None
            o = _index_items(old, node, kind) if so == "list" else {}
            n = _index_items(new, node, kind) if sn == "list" else {}
            for pe in list(o) + [k for k in n if k not in o]:
                ov, nv = o.get(pe, _MISSING), n.get(pe, _MISSING)
                if type(ov) is type(nv) and ov == nv:
                    continue
                _compare(ov, nv, items, (*path, pe), out)
    if not path:
        return
    if so == "missing":
        out.added.add(path)
    elif sn == "missing":
        out.removed.add(path)
    elif leaf and not _eq(old, new):
        out.modified.add(path)


def _collect(value: Any, node: SchemaNode | None, path: Path, into: set[Path]) -> None:
    """Every path `_compare` would reach in a subtree only one side has: the same walk
    (atomic lists and maps are leaves), without the other side to look at."""
    if path:
        into.add(path)
    if isinstance(value, dict):
        if _atomic_map(node):
            return
        for key, sub in value.items():
            _collect(sub, _child(node, key), (*path, "f:" + key), into)
    elif isinstance(value, list):
        kind = _list_kind(node)
        if kind == "atomic":
            return
        items = node.items() if node is not None else None
        for pe, sub in _index_items(value, node, kind).items():
            _collect(sub, items, (*path, pe), into)


def _prefixes(paths: set[Path]) -> set[Path]:
    return {p[:i] for p in paths for i in range(1, len(p) + 1)}


def _prune(value: Any, node: SchemaNode | None, remove: set[Path], keep: set[Path]) -> Any:
    """Remove `remove` paths from a copy of `value`, sparing any with kept descendants;
    containers emptied by the removal go too (Go's omitempty would drop them)."""
    below = _prefixes(remove)
    kept_below = _prefixes(keep)

    def walk(v: Any, n: SchemaNode | None, path: Path) -> Any:
        if isinstance(v, dict) and not _atomic_map(n):
            out = {}
            for key, sub in v.items():
                p = (*path, "f:" + key)
                if p in remove and p not in kept_below:
                    continue
                if p in below:
                    new_sub = walk(sub, _child(n, key), p)
                    if isinstance(new_sub, dict | list) and not new_sub and sub:
                        continue
                    out[key] = new_sub
                else:
                    out[key] = sub
            return out
        if isinstance(v, list):
            kind = _list_kind(n)
            if kind == "atomic":
                return v
            items = n.items() if n is not None else None
            out_list = []
            for i, item in enumerate(v):
                p = (*path, _item_element(item, n, kind, i))
                if p in remove and p not in kept_below:
                    continue
                out_list.append(walk(item, items, p) if p in below else item)
            return out_list
        return v

    return walk(value, node, ())


# --- managers -------------------------------------------------------------------------------


@dataclass
class _Manager:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: set[Path]
    # The stored fieldsV1 this manager was decoded from, and its paths: when the set is
    # unchanged (most writes touch one manager), the stored encoding is reused as is.
    stored: tuple[frozenset[Path], JSONObj] | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        # Appliers are one manager whatever version they used; updaters are per version.
        version = self.api_version if self.operation == UPDATE else ""
        return (self.manager, self.operation, version, self.subresource)

    def printed(self) -> str:
        """How the apiserver names a manager in conflict messages (printManager)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> JSONObj:
        entry: JSONObj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        if self.stored is not None and self.stored[0] == self.fields:
            entry["fieldsV1"] = self.stored[1]
        else:
            entry["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


Managers = dict[tuple[str, str, str, str], _Manager]


def _decode(entries: Any) -> Managers | None:
    """Managers from `metadata.managedFields`; None when absent or not decodable."""
    if not isinstance(entries, list):
        return None
    out: Managers = {}
    for e in entries:
        if not isinstance(e, dict) or e.get("operation") not in (APPLY, UPDATE):
            return None
        if e.get("fieldsType", "FieldsV1") != "FieldsV1" or not isinstance(e.get("manager"), str):
            return None
        m = _Manager(
            manager=e["manager"],
            operation=e["operation"],
            api_version=str(e.get("apiVersion", "")),
            subresource=str(e.get("subresource", "")),
            time=e.get("time") if isinstance(e.get("time"), str) else None,
            fields=from_fields_v1(e.get("fieldsV1", {})),
        )
        if isinstance(e.get("fieldsV1"), dict):
            m.stored = (frozenset(m.fields), e["fieldsV1"])
        if m.key in out:
            out[m.key].fields |= m.fields
            out[m.key].stored = None
        else:
            out[m.key] = m
    return out


def _encode(managers: Managers) -> list[JSONObj]:
    """Entries sorted as the apiserver sorts them: operation, time, manager, version."""
    live = [m for m in managers.values() if m.fields]
    live.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource))
    return [m.to_json() for m in live]


def _body(obj: JSONObj | None) -> JSONObj:
    """A copy without managedFields (they are bookkeeping, never owned or compared)."""
    if not obj:
        return {}
    out: JSONObj = jsonutil.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _shallow_body(obj: JSONObj | None) -> JSONObj:
    """`obj` without managedFields, copying only the top level and metadata: for callers
    that compare, or only set metadata.managedFields on the result (an update's diff must
    not deep-copy two whole objects per write)."""
    if not obj:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta = dict(meta)
        meta.pop("managedFields", None)
        out["metadata"] = meta
    return out


def _with_managed(obj: JSONObj, managers: Managers) -> JSONObj:
    entries = _encode(managers)
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
    return obj


def _api_version(*objs: JSONObj | None) -> str:
    for o in objs:
        if o and isinstance(o.get("apiVersion"), str):
            return str(o["apiVersion"])
    return ""


def _managed_of(obj: JSONObj | None) -> Any:
    if not obj:
        return None
    meta = obj.get("metadata")
    return meta.get("managedFields") if isinstance(meta, dict) else None


_Conflicts = dict[tuple[str, str, str, str], tuple[_Manager, set[Path]]]


def _conflict_error(conflicts: _Conflicts) -> StatusError:
    """409 worded as the apiserver's NewConflictError (managers sorted, paths in set order)."""
    pairs = [
        (conflicts[key][0], p) for key in sorted(conflicts) for p in _iterate(conflicts[key][1])
    ]
    causes = [
        Cause("FieldManagerConflict", path_string(p), f"conflict with {m.printed()}")
        for m, p in pairs
    ]
    if len(pairs) == 1:
        m, p = pairs[0]
        message = f"Apply failed with 1 conflict: conflict with {m.printed()}: {path_string(p)}"
    else:
        lines: list[str] = []
        for key in sorted(conflicts):
            m, paths = conflicts[key]
            lines.append(f"conflicts with {m.printed()}:")
            lines.extend(f"- {path_string(p)}" for p in _iterate(paths))
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return StatusError(message, 409, "Conflict", causes=causes)


# --- the two entry points ---------------------------------------------------------------------


def server_side_apply(
    live: JSONObj | None,
    config: JSONObj,
    manager: str,
    force: bool,
    node: SchemaNode | None,
    now: str,
    subresource: str = "",
) -> JSONObj:
    """The object after `manager` applies `config` (a `application/apply-patch+yaml` body).

    `live` is None when the object does not exist yet (apply creates it). Returns a new
    dict with `metadata.managedFields` updated; the inputs are not modified. Raises a 409
    Conflict listing every field another manager owns with a different value, unless
    `force` (then those fields move to `manager`).
    """
    if not isinstance(config, dict):
        raise bad_request("the applied configuration must be an object")
    if not manager:
        raise bad_request("PATCH, application/apply-patch+yaml requests require fieldManager")
    version = _api_version(config, live)
    live_body = _body(live)
    config_body = _body(config)

    managers = _decode(_managed_of(live)) or {}
    if live and not managers:
        # An object nobody owns yet: Kubernetes hands everything to this pseudo manager.
        owner = _Manager(BEFORE_FIRST_APPLY, UPDATE, version, "", None, set())
        owner.fields = _filter(field_set(live_body, node), subresource)
        managers[owner.key] = owner

    me = _Manager(manager, APPLY, version, subresource, None, set())
    previous = managers.get(me.key)
    last = previous.fields if previous is not None else set()
    me.time = previous.time if previous is not None else None
    me.fields = _filter(field_set(config_body, node), subresource)
    managers[me.key] = me

    merged = _merge(live_body, config_body, node)
    owned = set().union(*(m.fields for m in managers.values()))
    result = _prune(merged, node, last - owned, owned)

    diff = compare(live_body, result, node)
    changed = _filter(diff.added | diff.modified, subresource)
    conflicts: _Conflicts = {}
    for key, other in managers.items():
        if key == me.key:
            continue
        clash = other.fields & changed
        if clash:
            conflicts[key] = (other, clash)
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for other, clash in conflicts.values():
        other.fields -= clash
    for key, other in managers.items():
        if key != me.key:
            other.fields -= diff.removed
    if not _eq(result, live_body) or me.time is None:
        me.time = now
    return _with_managed(result, managers)


def _top_level_struct(path: Path, obj: JSONObj, node: SchemaNode | None) -> bool:
    if len(path) != 1 or node is None or not isinstance(obj.get(path[0][2:]), dict):
        return False
    field_node = node.field(path[0][2:])
    return field_node is not None and field_node.is_struct


def record_update(
    old: JSONObj | None,
    new: JSONObj,
    manager: str,
    node: SchemaNode | None,
    now: str,
    subresource: str = "",
) -> JSONObj:
    """`new` with managedFields updated for a create (`old` None), update or patch.

    The writer becomes owner (operation Update) of every field it added or changed, other
    managers lose those fields (updates never conflict), and everyone loses removed fields.

    Client-sent managedFields follow the apiserver's rules: `[]` or `[{}]` resets them, a
    valid non-empty list replaces them, anything else keeps the stored ones.
    """
    version = _api_version(new, old)
    sent = _managed_of(new)
    if isinstance(sent, list) and (not sent or sent == [{}]):
        managers: Managers = {}
    else:
        decoded = _decode(sent)
        managers = decoded if decoded else (_decode(_managed_of(old)) or {})

    old_body = _shallow_body(old)
    new_body = _shallow_body(new)
    diff = compare(old_body, new_body, node)
    added = diff.added
    if old is None:
        # Go's zero value already holds non-pointer structs such as spec and status.
        added = {p for p in added if not _top_level_struct(p, new_body, node)}
    changed = _filter(added | diff.modified, subresource)

    for m in managers.values():
        m.fields -= changed
        m.fields -= diff.removed
    me = _Manager(manager or "unknown", UPDATE, version, subresource, None, set())
    previous = managers.get(me.key)
    if previous is not None:
        me.fields = previous.fields
        me.time = previous.time
    if changed:
        me.fields = me.fields | changed
        me.time = now
    managers[me.key] = me
    return _with_managed(new_body, managers)
