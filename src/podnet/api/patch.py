"""The three PATCH formats the apiserver accepts, applied to raw JSON objects.

- `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch (SMP). kubectl's
  client-side apply sends it, with directives (`$patch`, `$setElementOrder/<list>`,
  `$retainKeys`, `$deleteFromPrimitiveList/<list>`), and expects the exact list merging of
  k8s.io/apimachinery/pkg/util/strategicpatch. List semantics come from the schema
  (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`), so Service ports merge by
  `port`, containers and env by `name`, volumeMounts by `mountPath`, and so on.
- `application/merge-patch+json`: RFC 7386 JSON merge patch.
- `application/json-patch+json`: RFC 6902 JSON patch.

Every function copies its inputs first; callers keep `original` (the stored object).

Where upstream SMP would copy directive keys verbatim into a value that is new to the object
(a later typed decode then drops them), these functions drop them right away, because podnet
keeps raw JSON and never round-trips through Go structs.
"""

from __future__ import annotations

from typing import Any

from podnet.api.errors import StatusError, bad_request
from podnet.api.schema import SchemaNode
from podnet.util import jsonutil

PATCH_DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

JSONObj = dict[str, Any]

# Status message NewGenericServerResponse gives a 422: the underlying reason is not sent.
REJECTED = "the server rejected our request due to an error in our request"


class PatchFailure(Exception):
    """The underlying reason behind a generic 422; kept as the StatusError's __cause__."""


def _rejected(detail: str) -> StatusError:
    err = StatusError(REJECTED, 422, "Invalid")
    err.__cause__ = PatchFailure(detail)
    return err


# --- strategic merge patch ----------------------------------------------------------------


def strategic_merge_patch(original: JSONObj, patch: JSONObj, node: SchemaNode | None) -> JSONObj:
    """Apply a strategic merge patch the way the apiserver does.

    `node` is the kind's schema; without one (custom resources) this is a JSON merge patch,
    which is what the apiserver would do if it accepted SMP for them at all (it answers 415).

    Errors: malformed directives are 400 BadRequest with strategicpatch's own message (the
    apiserver answers a few of them with 500; a client error is the honest code). Lists of
    lists and a patch that disagrees with its `$retainKeys` are the 422 the apiserver gives.
    """
    if not isinstance(patch, dict):
        raise bad_request("invalid JSON document")
    if node is None:
        return json_merge_patch(original, patch)
    result = _merge_map(jsonutil.deepcopy(original or {}), jsonutil.deepcopy(patch), node)
    return result


def _strategy(node: SchemaNode | None) -> str:
    """The patch strategy without `retainKeys` (which only adds the `$retainKeys` directive)."""
    if node is None:
        return ""
    strategies = [s for s in node.patch_strategies if s != "retainKeys"]
    if len(strategies) > 1:
        raise bad_request(f"unexpected patch strategy: {node.patch_strategy}")
    return strategies[0] if strategies else ""


def _child(node: SchemaNode | None, key: str) -> SchemaNode | None:
    return node.child(key) if node is not None else None


def _items(node: SchemaNode | None) -> SchemaNode | None:
    return node.items() if node is not None else None


def _go(value: Any) -> str:
    """Go's `%v` of a decoded JSON value, so error messages read like strategicpatch's."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _no_merge_key(m: Any, key: str) -> StatusError:
    return bad_request(f"map: {_go(m)} does not contain declared merge key: {key}")


def _scalar_key(v: Any) -> tuple[str, Any]:
    """A hashable identity for a JSON scalar where true != 1 but 1 == 1.0 (as in Go)."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", float(v))
    if isinstance(v, str):
        return ("s", v)
    if v is None:
        return ("z", None)
    raise _rejected("lists of lists are not supported")  # maps/lists are not scalars


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return bool(a == b)
    return _scalar_key(a) == _scalar_key(b)


def _is_directive_key(key: str) -> bool:
    return (
        key in (PATCH_DIRECTIVE, RETAIN_KEYS)
        or key.startswith(SET_ELEMENT_ORDER + "/")
        or key.startswith(DELETE_FROM_PRIMITIVE_LIST + "/")
    )


def _fresh(value: Any, node: SchemaNode | None) -> Any:
    """A patch value landing where the object has nothing: nulls and directives dropped."""
    if isinstance(value, dict):
        if value.get(PATCH_DIRECTIVE) == "delete":
            return {}
        return {
            k: _fresh(v, _child(node, k))
            for k, v in value.items()
            if v is not None and not _is_directive_key(k)
        }
    if isinstance(value, list):
        items = _items(node)
        return [
            _fresh(v, items) for v in value if not (isinstance(v, dict) and PATCH_DIRECTIVE in v)
        ]
    return value


def _merge_map(original: JSONObj, patch: JSONObj, node: SchemaNode | None) -> JSONObj:
    if PATCH_DIRECTIVE in patch:
        directive = patch[PATCH_DIRECTIVE]
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != PATCH_DIRECTIVE}
            return _fresh(rest, node)  # type: ignore[no-any-return]
        if directive == "delete":
            return {}
        raise bad_request(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")

    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, node)

    for key, patch_value in patch.items():
        is_delete_list = False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            key = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST)
            is_delete_list = True
        if patch_value is None:
            original.pop(key, None)
            continue
        child = _child(node, key)
        if key not in original:
            if not is_delete_list:
                original[key] = _fresh(patch_value, child)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(patch_value, dict):
            if _strategy(child) == "replace":
                original[key] = _fresh(patch_value, child)
            else:
                original[key] = _merge_map(current, patch_value, child)
        elif isinstance(current, list) and isinstance(patch_value, list):
            original[key] = _merge_list_field(current, patch_value, child, is_delete_list)
        elif not is_delete_list:
            original[key] = _fresh(patch_value, child)
    return original


def _extract_key(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        if prefix == DELETE_FROM_PRIMITIVE_LIST:
            raise bad_request("invalid patch format of primitive list")
        raise bad_request("invalid patch format of setElementOrder list")
    return rest


def _apply_retain_keys(original: JSONObj, patch: JSONObj) -> None:
    """`$retainKeys`: drop every key of `original` not listed (e.g. a Deployment strategy
    switching from RollingUpdate to Recreate drops `rollingUpdate`)."""
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
        raise bad_request("invalid patch format of retainKeys")
    keep = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in keep:
            raise _rejected("patch content doesn't match retainKeys list")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _merge_list_field(
    current: list[Any], patch_list: list[Any], node: SchemaNode | None, is_delete_list: bool
) -> list[Any]:
    if _strategy(node) == "merge":
        merge_key = node.patch_merge_key if node is not None else None
        return _merge_list(current, patch_list, _items(node), merge_key or "", is_delete_list)
    if is_delete_list:
        # Only merge lists carry deletion lists; anything else leaves the list alone.
        return current
    return _fresh(patch_list, node)  # type: ignore[no-any-return]


def _element_kind(*lists: list[Any]) -> str:
    """ "map", "scalar" or "" (no elements); lists of lists are refused as upstream does."""
    kind = ""
    for lst in lists:
        for v in lst:
            k = "map" if isinstance(v, dict) else "list" if isinstance(v, list) else "scalar"
            if k == "list":
                raise _rejected("lists of lists are not supported")
            if kind and k != kind:
                raise bad_request(f"list element types are not identical: {_go(list(lists))}")
            kind = k
    return kind


def _merge_list(
    original: list[Any],
    patch: list[Any],
    items: SchemaNode | None,
    merge_key: str,
    is_delete_list: bool,
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        if is_delete_list:
            drop = {_scalar_key(v) for v in patch}
            return [v for v in original if _scalar_key(v) not in drop]
        merged = _dedup(original + patch)
        merge_key = ""
    else:
        if not merge_key:
            raise bad_request("cannot merge lists without merge key for type map")
        original, patch = _apply_list_directives(original, patch, merge_key)
        merged = _merge_by_key(original, patch, merge_key, items)
    patch_items, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(patch_items, server_only, patch, original, merge_key)


def _dedup(values: list[Any]) -> list[Any]:
    seen: set[tuple[str, Any]] = set()
    out = []
    for v in values:
        k = _scalar_key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _apply_list_directives(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Handle `{"$patch": "delete", <key>: v}` and `{"$patch": "replace"}` elements."""
    plain: list[Any] = []
    replace = False
    for element in patch:
        if PATCH_DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[PATCH_DIRECTIVE]
        if directive == "delete":
            if merge_key not in element:
                raise _no_merge_key(element, merge_key)
            value = element[merge_key]
            original = [o for o in original if not (merge_key in o and _same(o[merge_key], value))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise bad_request(f"unknown patch type: {_go(directive)} in map: {_go(element)}")
    if replace:
        return plain, []
    return original, plain


def _find(values: list[Any], merge_key: str, value: Any) -> int:
    for i, v in enumerate(values):
        if not isinstance(v, dict):
            raise bad_request(f"value for key {i} is not a map.")
        if merge_key in v and _same(v[merge_key], value):
            return i
    return -1


def _merge_by_key(
    original: list[Any], patch: list[Any], merge_key: str, items: SchemaNode | None
) -> list[Any]:
    merged = list(original)
    for element in patch:
        if merge_key not in element:
            raise _no_merge_key(element, merge_key)
        i = _find(merged, merge_key, element[merge_key])
        if i >= 0:
            merged[i] = _merge_map(merged[i], element, items)
        else:
            merged.append(_fresh(element, items))
    return merged


def _identity(value: Any, merge_key: str) -> Any:
    if merge_key:
        return value.get(merge_key) if isinstance(value, dict) else None
    return value


def _index(order: list[Any], value: Any, merge_key: str) -> int:
    target = _identity(value, merge_key)
    for i, v in enumerate(order):
        if _same(_identity(v, merge_key), target):
            return i
    return -1


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split `merged` into elements named in `by` (the patch or its order) and the rest."""
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for v in merged:
        if merge_key:
            if not isinstance(v, dict) or merge_key not in v:
                raise _no_merge_key(v, merge_key)
            found = any(
                isinstance(b, dict) and merge_key in b and _same(b[merge_key], v[merge_key])
                for b in by
            )
        else:
            found = any(_same(b, v) for b in by)
        (in_patch if found else server_only).append(v)
    return in_patch, server_only


def _sort_by(values: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    deletions: list[Any] = []
    if merge_key:
        for v in [*values, *order]:
            if not isinstance(v, dict) or merge_key not in v:
                raise _no_merge_key(v, merge_key)
        deletions = [v for v in values if v.get(PATCH_DIRECTIVE) == "delete"]
        values = [v for v in values if v.get(PATCH_DIRECTIVE) != "delete"]
    # Elements missing from `order` sort first, as upstream's comparator makes them "less".
    ranked = sorted(values, key=lambda v: _index(order, v, merge_key))
    return ranked + deletions


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved by the live
    order where both are known; a patch item the server never had goes first (which is why
    `kubectl patch` adding a container lists it before the existing ones)."""
    right = _sort_by(patch_items, patch_order, merge_key)
    left = _sort_by(server_only, server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key)
            ri = _index(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _merge_ordered_lists(original: JSONObj, patch: JSONObj, node: SchemaNode | None) -> None:
    """`$setElementOrder/<list>`: merge that list now and put it in the order given.

    Precedence is the directive's order, then the patch's, then the live object's; the
    merged list is taken out of `patch` so the main loop does not merge it again.
    """
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise bad_request("invalid patch format of setElementOrder list")
        name = _extract_key(key, SET_ELEMENT_ORDER)
        child = _child(node, name)
        merge_key = (child.patch_merge_key if child is not None else None) or ""
        current = original.get(name)
        patch_list = patch.get(name)
        if current is not None and not isinstance(current, list):
            raise bad_request(f"invalid type for {name}: expected a list")
        if patch_list is not None and not isinstance(patch_list, list):
            raise bad_request("invalid patch format of setElementOrder list")
        _check_order(patch_list or [], order, merge_key)
        if current is None and patch_list is None:
            continue
        if patch_list is None:
            merged = current or []
        else:
            merged = _merge_list_field(current or [], patch_list, child, False)
        kind = _element_kind(current or [], patch_list or [])
        if kind != "map":
            merge_key = ""
        if kind:
            patch_items, server_only = _partition(merged, order, merge_key)
            merged = _normalize_order(patch_items, server_only, order, current or [], merge_key)
        original[name] = merged
        patch.pop(name, None)


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list must follow the `$setElementOrder` list (deletions aside)."""
    if not order or not patch_list:
        return
    kept = patch_list
    if merge_key:
        kept = [
            v
            for v in patch_list
            if not (isinstance(v, dict) and v.get(PATCH_DIRECTIVE) == "delete")
        ]
    p = o = 0
    while p < len(kept) and o < len(order):
        item = kept[p]
        if isinstance(item, dict) and PATCH_DIRECTIVE in item:
            p += 1
            continue
        if merge_key:
            for v in (item, order[o]):
                if not isinstance(v, dict) or merge_key not in v:
                    raise _no_merge_key(v, merge_key)
            equal = _same(item[merge_key], order[o][merge_key])
        else:
            equal = _same(item, order[o])
        if equal:
            p += 1
        o += 1
    if p < len(kept):
        raise bad_request(
            f"The order in patch list:\n{_go(patch_list)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{_go(order)}\n"
        )


# --- JSON merge patch (RFC 7386) -----------------------------------------------------------


def json_merge_patch(original: JSONObj, patch: JSONObj, *, copy: bool = True) -> JSONObj:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
    `copy=False`: `original` is the caller's own copy and is merged into in place."""
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    result = _merge_patch(jsonutil.deepcopy(original) if copy else original, patch)
    return result  # type: ignore[no-any-return]


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return jsonutil.deepcopy(patch)
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


# --- JSON patch (RFC 6902) -----------------------------------------------------------------


def json_patch(original: JSONObj, ops: list[Any]) -> JSONObj:
    """RFC 6902 operations applied in order, all or nothing.

    As in the apiserver (evanphx/json-patch): a body that is not a list of operations is a
    400 BadRequest; any operation that cannot be applied (missing path, failed `test`,
    unknown op) is a 422 Invalid whose message is only "the server rejected our request due
    to an error in our request" (the reason is on `__cause__`). Negative array indices count
    from the end, as json-patch v4 allows.
    """
    if not isinstance(ops, list):
        raise bad_request(
            f"json: cannot unmarshal {_json_kind(ops)} into Go value of type jsonpatch.Patch"
        )
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    doc: Any = jsonutil.deepcopy(original)
    for op in ops:
        doc = _apply_op(doc, op)
    if not isinstance(doc, dict):
        raise _rejected("the patched document is not an object")
    return doc


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def _pointer(op: JSONObj, field: str) -> list[str]:
    path = op.get(field)
    if not isinstance(path, str):
        raise _rejected(f"operation missing {field} field")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _rejected(f"JSON pointer must start with '/': {path!r}")
    tokens = path[1:].split("/")
    for t in tokens:
        rest = t.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise _rejected(f"invalid JSON pointer escape in {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _array_index(token: str, length: int, for_add: bool) -> int:
    if token == "-" and for_add:
        return length
    if not token.lstrip("-").isdigit():
        raise _rejected(f"value was not a proper array index: '{token}'")
    idx = int(token)
    size = length + 1 if for_add else length
    if idx < 0:
        if idx < -size:
            raise _rejected(f"Unable to access invalid index: {idx}")
        idx += size
    if idx >= size:
        raise _rejected(f"Unable to access invalid index: {idx}")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise _rejected("doc is missing path")
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_array_index(t, len(cur), False)]
        else:
            raise _rejected("doc is missing path")
    return cur


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _rejected(f"doc is missing key: {last}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), False)]
    raise _rejected("doc is missing path")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), True), value)
    else:
        raise _rejected("add operation does not apply: doc is missing path")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _rejected("unable to remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _rejected(f"Unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_array_index(last, len(parent), False)]
    else:
        raise _rejected("remove operation does not apply: doc is missing path")
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return _scalar_key(a) == _scalar_key(b)


def _apply_op(doc: Any, op: JSONObj) -> Any:
    kind = op.get("op")
    path = _pointer(op, "path")
    if kind in ("add", "replace", "test") and "value" not in op:
        raise _rejected(f"{kind} operation missing value")
    if kind == "add":
        return _add(doc, path, jsonutil.deepcopy(op["value"]))
    if kind == "remove":
        return _remove(doc, path)
    if kind == "replace":
        _get(doc, path)  # must exist
        if not path:
            return jsonutil.deepcopy(op["value"])
        doc = _remove(doc, path)
        return _add(doc, path, jsonutil.deepcopy(op["value"]))
    if kind == "move":
        source = _pointer(op, "from")
        if path[: len(source)] == source and len(path) > len(source):
            raise _rejected("move operation: from is a proper prefix of path")
        value = _get(doc, source)
        if source == path:
            return doc
        doc = _remove(doc, source)
        return _add(doc, path, value)
    if kind == "copy":
        value = jsonutil.deepcopy(_get(doc, _pointer(op, "from")))
        return _add(doc, path, value)
    if kind == "test":
        if not _json_equal(_get(doc, path), op["value"]):
            raise _rejected(f"testing value {op.get('path')} failed")
        return doc
    raise _rejected(f"Unexpected kind: {kind}")
