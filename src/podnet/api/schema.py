"""The official Kubernetes 1.32 schemas, as a small navigable view.

podnet does not hand-write a schema per kind: the `kubernetes-validate` package ships the
upstream JSON schemas (strict variants, with the `x-kubernetes-patch-*` and
`x-kubernetes-list-*` extensions). Strategic merge patch, server-side apply and
`fieldValidation=Strict` all read list and map semantics from here.

The 1.3 MB definitions file is read once, on first use (about 80 ms), and kept; importing
this module does no I/O. Kinds without a schema (custom resources such as
`gateway.networking.k8s.io`) get `None`, and callers fall back to schemaless rules.

Decode checks mirror what the apiserver's JSON decoder says, because users search for
those words: `json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port
of type int32` and `strict decoding error: unknown field "spec.foo"`.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from podnet.api.errors import StatusError, bad_request

SCHEMA_DIR = "v1.32.0-local-strict"
_REF_PREFIX = "#/$defs/"
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Quantity's own UnmarshalJSON error (k8s.io/apimachinery/pkg/api/resource).
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_QUANTITY_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
# Types whose Go UnmarshalJSON decodes into a plain Go value first, so the error names that
# type (Go then adds the struct field context to the inner UnmarshalTypeError).
_CUSTOM_GO_VALUE = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "string",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "string",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int32",
}


class Schemas:
    """All definitions of one Kubernetes version, indexed by group/version/kind."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self._defs = defs
        # Nodes by the raw dict they stand for: every request walks the same positions, and
        # a `$ref` node merges its definition (a dict copy) when made. The raw dict is kept
        # beside its node, so its id cannot be reused while cached.
        self._nodes: dict[int, tuple[Mapping[str, Any], SchemaNode]] = {}
        self._by_gvk: dict[tuple[str, str, str], str] = {}
        for name, d in defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind", ()):
                key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
                # Prefer the definition named for the kind (shared meta types list many GVKs).
                if key not in self._by_gvk or name.endswith("." + key[2]):
                    self._by_gvk[key] = name

    @classmethod
    def load(cls, version_dir: str = SCHEMA_DIR) -> Schemas:
        """Read `_definitions.json` from the installed kubernetes_validate package."""
        root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
        text = (root / version_dir / "_definitions.json").read_text(encoding="utf-8")
        return cls(json.loads(text)["$defs"])

    def definition(self, name: str) -> SchemaNode | None:
        """The node for a definition name such as `io.k8s.api.core.v1.ServicePort`."""
        raw = self._defs.get(name)
        return self.node(raw, name) if raw is not None else None

    def node(self, raw: Mapping[str, Any], name: str = "") -> SchemaNode:
        """The (cached) node for one raw schema position of these definitions."""
        hit = self._nodes.get(id(raw))
        if hit is not None and hit[0] is raw:
            return hit[1]
        made = SchemaNode(raw, self, name)
        self._nodes[id(raw)] = (raw, made)
        return made

    def raw(self, name: str) -> Mapping[str, Any] | None:
        return self._defs.get(name)

    def for_kind(self, group: str, version: str, kind: str) -> SchemaNode | None:
        name = self._by_gvk.get((group, version, kind))
        return self.definition(name) if name else None

    def kinds(self) -> list[tuple[str, str, str]]:
        """Every (group, version, kind) that has a schema."""
        return sorted(self._by_gvk)


@functools.cache
def schemas() -> Schemas:
    """The 1.32 schemas, loaded on first call and shared afterwards."""
    return Schemas.load()


def for_kind(group: str, version: str, kind: str) -> SchemaNode | None:
    """The schema of a built-in kind, or None (custom resources, unknown kinds)."""
    return schemas().for_kind(group, version, kind)


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> ("apps", "v1"); `v1` -> ("", "v1")."""
    group, _, version = api_version.rpartition("/")
    return group, version


class _Facts(NamedTuple):
    preserve_unknown: bool
    int_or_string: bool
    types: frozenset[str]
    struct: bool
    values: SchemaNode | None  # map values
    items: SchemaNode | None  # array items
    quantity: bool
    custom: str | None  # the Go value type decode errors name, when it is special


class SchemaNode:
    """One schema position with `$ref` resolved; cheap to create, never mutated.

    A property that is a `$ref` keeps its own `x-kubernetes-*` extensions (they sit on the
    property, not on the referenced definition), so both are merged here.
    """

    __slots__ = ("_facts", "_fields", "_raw", "_schemas", "_types", "name")

    def __init__(self, raw: Mapping[str, Any], schemas: Schemas, name: str = "") -> None:
        ref = raw.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref[len(_REF_PREFIX) :]
            target = schemas.raw(name) or {}
            merged = dict(target)
            merged.update((k, v) for k, v in raw.items() if k not in ("$ref", "description"))
            raw = merged
        self._raw = raw
        self._schemas = schemas
        self._types: frozenset[str] | None = None
        self._fields: dict[str, SchemaNode | None] = {}  # `field()` answers, per name
        self._facts: _Facts | None = None
        self.name = name  # definition name when this came from one, else ""

    def __repr__(self) -> str:
        return f"SchemaNode({self.name or sorted(self.types)})"

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._raw

    @property
    def facts(self) -> _Facts:
        """What the decode checks ask of this node, worked out once: every request walks
        the same nodes, and each property above is a few dict lookups per visit."""
        f = self._facts
        if f is None:
            f = self._facts = _Facts(
                preserve_unknown=self.preserve_unknown, int_or_string=self.is_int_or_string,
                types=self.types, struct=self.is_struct, values=self.map_values(),
                items=self.items(), quantity=self.name == _QUANTITY,
                custom=_CUSTOM_GO_VALUE.get(self.name))
        return f

    # --- types -------------------------------------------------------------------------

    @property
    def types(self) -> frozenset[str]:
        """JSON types allowed (without "null"); empty means anything goes."""
        if self._types is not None:
            return self._types
        found: set[str] = set()
        branches = [self._raw, *self._raw.get("oneOf", ()), *self._raw.get("anyOf", ())]
        for branch in branches:
            t = branch.get("type")
            if isinstance(t, str):
                found.add(t)
            elif isinstance(t, list):
                found.update(x for x in t if isinstance(x, str))
        found.discard("null")
        self._types = frozenset(found)
        return self._types

    @property
    def format(self) -> str:
        f = self._raw.get("format")
        return f if isinstance(f, str) else ""

    @property
    def is_int_or_string(self) -> bool:
        return (
            bool(self._raw.get("x-kubernetes-int-or-string"))
            or self.format == "int-or-string"
            or self.types == {"integer", "string"}
        )

    @property
    def is_object(self) -> bool:
        return "object" in self.types

    @property
    def is_array(self) -> bool:
        return "array" in self.types

    @property
    def is_struct(self) -> bool:
        """An object with declared fields (a Go struct), as opposed to a map."""
        return "properties" in self._raw or self._raw.get("additionalProperties") is False

    @property
    def is_map(self) -> bool:
        """An object whose values all share one schema (a Go map)."""
        return isinstance(self._raw.get("additionalProperties"), Mapping)

    @property
    def preserve_unknown(self) -> bool:
        """Free-form content (RawExtension, JSON, FieldsV1): anything is kept as is."""
        if self._raw.get("x-kubernetes-preserve-unknown-fields"):
            return True
        if not self.types:
            return True
        return self.is_object and not self.is_struct and not self.is_map

    @property
    def additional_properties(self) -> bool | SchemaNode:
        """False for closed structs, a node for maps, True for free-form objects."""
        ap = self._raw.get("additionalProperties")
        if ap is False:
            return False
        if isinstance(ap, Mapping):
            return self._schemas.node(ap)
        return "properties" not in self._raw

    # --- navigation ----------------------------------------------------------------------

    def field_names(self) -> list[str]:
        props = self._raw.get("properties")
        return list(props) if isinstance(props, Mapping) else []

    def field(self, name: str) -> SchemaNode | None:
        try:
            return self._fields[name]
        except KeyError:
            pass
        found = None
        props = self._raw.get("properties")
        if isinstance(props, Mapping):
            sub = props.get(name)
            if isinstance(sub, Mapping):
                found = self._schemas.node(sub)
        if len(self._fields) < 512:  # map keys also pass by here: keep it bounded
            self._fields[name] = found
        return found

    def items(self) -> SchemaNode | None:
        it = self._raw.get("items")
        return self._schemas.node(it) if isinstance(it, Mapping) else None

    def map_values(self) -> SchemaNode | None:
        ap = self._raw.get("additionalProperties")
        return self._schemas.node(ap) if isinstance(ap, Mapping) else None

    def child(self, key: str) -> SchemaNode | None:
        """The schema under `key` of an object: a declared field, else the map value."""
        return self.field(key) or self.map_values()

    # --- list and map semantics ----------------------------------------------------------

    @property
    def patch_strategy(self) -> str:
        """Raw `x-kubernetes-patch-strategy`, e.g. "merge", "retainKeys", "merge,retainKeys"."""
        s = self._raw.get("x-kubernetes-patch-strategy")
        return s if isinstance(s, str) else ""

    @property
    def patch_strategies(self) -> tuple[str, ...]:
        return tuple(s for s in self.patch_strategy.split(",") if s)

    @property
    def patch_merge_key(self) -> str | None:
        k = self._raw.get("x-kubernetes-patch-merge-key")
        return k if isinstance(k, str) else None

    @property
    def list_type(self) -> str | None:
        """`atomic`, `set` or `map`; None when unset (server-side apply treats it as atomic)."""
        t = self._raw.get("x-kubernetes-list-type")
        return t if isinstance(t, str) else None

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        keys = self._raw.get("x-kubernetes-list-map-keys")
        return tuple(keys) if isinstance(keys, list) else ()

    @property
    def map_type(self) -> str | None:
        """`atomic` or `granular` (`x-kubernetes-map-type`); None means granular."""
        t = self._raw.get("x-kubernetes-map-type")
        return t if isinstance(t, str) else None

    # --- Go names, for decode errors -----------------------------------------------------

    @property
    def short_name(self) -> str:
        """`ServicePort` for io.k8s.api.core.v1.ServicePort (the Go struct name)."""
        return self.name.rsplit(".", 1)[-1] if self.name else ""

    @property
    def go_type(self) -> str:
        """The Go type as encoding/json prints it: `int32`, `[]v1.ServicePort`, ..."""
        if self.name:
            return ".".join(self.name.split(".")[-2:])
        types = self.types
        if "array" in types:
            it = self.items()
            return "[]" + (it.go_type if it else "interface {}")
        if "object" in types:
            mv = self.map_values()
            return "map[string]" + (mv.go_type if mv else "interface {}")
        if "integer" in types:
            return self.format if self.format in _INT_RANGES else "int64"
        if "number" in types:
            return "float64"
        if "boolean" in types:
            return "bool"
        if "string" in types:
            return "[]uint8" if self.format == "byte" else "string"
        return "interface {}"


# --- decode checks ---------------------------------------------------------------------


def unknown_fields(obj: Any, node: SchemaNode | None) -> list[str]:
    """Paths of fields the schema does not declare, as the strict decoder prints them.

    `spec.foo`, `spec.ports[0].bar`, `metadata.foo`. apiVersion and kind are declared by
    every kind's schema. Values of the wrong type are not descended into.
    """
    out: list[str] = []
    if node is not None:
        _walk_unknown(obj, node, "", out)
    return out


def _walk_unknown(value: Any, node: SchemaNode, path: str, out: list[str]) -> None:
    facts = node.facts
    if facts.preserve_unknown:
        return
    if isinstance(value, dict):
        if "object" not in facts.types:
            return
        values = facts.values
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else key
            child = node.field(key)
            if child is None and values is None:
                if facts.struct:
                    out.append(sub_path)
                continue
            _walk_unknown(sub, child or values, sub_path, out)  # type: ignore[arg-type]
    elif isinstance(value, list) and "array" in facts.types:
        items = facts.items
        if items is not None:
            for i, sub in enumerate(value):
                _walk_unknown(sub, items, f"{path}[{i}]", out)


def patch_clean(value: Any, node: SchemaNode) -> bool:
    """Whether a patch body has neither a field the schema does not declare nor a value of
    the wrong JSON type: `unknown_fields` and `type_errors` both empty, found in one walk
    that stops at the first problem. Keys starting with `$` (strategic merge patch
    directives) are not fields and are skipped."""
    if value is None:
        return True
    facts = node.facts
    if facts.preserve_unknown:
        return True
    kind = _json_kind(value)
    if facts.quantity:
        return kind in ("string", "number")
    if facts.int_or_string:
        return kind == "string" or (kind == "number" and isinstance(value, int)
                                    and _fits(value, "int32"))
    types = facts.types
    if kind == "object":
        if "object" not in types:
            return False
        values = facts.values
        for key, sub in value.items():
            if key[:1] == "$":
                continue
            child = node.field(key)
            if child is None:
                if values is None:
                    if facts.struct:
                        return False  # an unknown field
                    continue
                child = values
            if not patch_clean(sub, child):
                return False
        return True
    if kind == "array":
        if "array" not in types:
            return False
        items = facts.items
        return items is None or all(patch_clean(sub, items) for sub in value)
    if kind == "bool":
        return "boolean" in types
    if kind == "string":
        return "string" in types
    if "integer" in types:
        fmt = node.format if node.format in _INT_RANGES else "int64"
        return not isinstance(value, float) and _fits(value, fmt)
    return "number" in types


def type_errors(obj: Any, node: SchemaNode | None) -> list[str]:
    """Go `encoding/json` messages for values of the wrong JSON type, in document order.

    Go reports `json: cannot unmarshal <what> into Go struct field <Struct>.<path> of type
    <type>`, where <Struct> is the innermost struct holding the field and <path> the field
    names from the root (no indices, no map keys). `null` is always accepted.
    """
    out: list[str] = []
    if node is not None and isinstance(obj, dict):
        _walk_types(obj, node, [], node.short_name, out)
    return out


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_text(value: int | float) -> str:
    return json.dumps(value)


def _type_error(what: str, struct: str, fields: list[str], go_type: str) -> str:
    if struct and fields:
        return (
            f"json: cannot unmarshal {what} into Go struct field "
            f"{struct}.{'.'.join(fields)} of type {go_type}"
        )
    return f"json: cannot unmarshal {what} into Go value of type {go_type}"


def _walk_types(
    value: Any, node: SchemaNode, fields: list[str], struct: str, out: list[str]
) -> None:
    if value is None:
        return
    facts = node.facts
    if facts.preserve_unknown:
        return
    kind = _json_kind(value)
    types = facts.types
    custom = facts.custom
    if facts.quantity:
        if kind not in ("string", "number"):
            out.append(_QUANTITY_ERROR)
        return
    if facts.int_or_string:
        if kind == "string":
            return
        if kind == "number" and isinstance(value, int) and _fits(value, "int32"):
            return
        what = f"number {_number_text(value)}" if kind == "number" else kind
        out.append(_type_error(what, struct, fields, "int32"))
        return
    if kind == "object":
        if "object" not in types:
            out.append(_type_error(kind, struct, fields, custom or node.go_type))
            return
        values = facts.values
        inner = node.short_name if facts.struct and node.name else struct
        for key, sub in value.items():
            child = node.field(key)
            if child is not None:
                _walk_types(sub, child, [*fields, key], inner, out)
            elif values is not None:
                # Map keys are not part of Go's error path.
                _walk_types(sub, values, fields, struct, out)
        return
    if kind == "array":
        if "array" not in types:
            out.append(_type_error(kind, struct, fields, custom or node.go_type))
            return
        items = facts.items
        if items is not None:
            for sub in value:
                _walk_types(sub, items, fields, struct, out)
        return
    if kind == "bool":
        if "boolean" not in types:
            out.append(_type_error(kind, struct, fields, custom or node.go_type))
        return
    if kind == "string":
        if "string" not in types:
            out.append(_type_error(kind, struct, fields, custom or node.go_type))
        return
    # number
    if "integer" in types:
        fmt = node.format if node.format in _INT_RANGES else "int64"
        if isinstance(value, float) or not _fits(value, fmt):
            out.append(_type_error(f"number {_number_text(value)}", struct, fields, fmt))
        return
    if "number" not in types:
        out.append(_type_error(kind, struct, fields, custom or node.go_type))


def _fits(value: int | float, fmt: str) -> bool:
    lo, hi = _INT_RANGES[fmt]
    return isinstance(value, int) and lo <= value <= hi


def _cannot_handle(kind: str, version: str, detail: str) -> StatusError:
    # Wording of apiserver's transformDecodeError (handlers/rest.go).
    return bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}')


def check_decode(obj: Any, group: str, version: str, kind: str) -> StatusError | None:
    """The 400 BadRequest the apiserver gives when `obj` does not decode into its Go type.

    None when the kind has no schema or every value has the right JSON type.
    """
    node = for_kind(group, version, kind)
    errors = type_errors(obj, node)
    if not errors:
        return None
    return _cannot_handle(kind, version, errors[0])


def strict_unknown(obj: Any, group: str, version: str, kind: str) -> list[str]:
    """Unknown-field paths for `fieldValidation=Strict|Warn` (empty without a schema)."""
    return unknown_fields(obj, for_kind(group, version, kind))


def unknown_field_warnings(paths: list[str]) -> list[str]:
    """`fieldValidation=Warn`: one `Warning` header text per unknown field."""
    return [f'unknown field "{p}"' for p in paths]


def strict_error(obj: Any, group: str, version: str, kind: str) -> StatusError | None:
    """`fieldValidation=Strict`: the 400 for unknown fields, or None.

    `Service in version "v1" cannot be handled as a Service: strict decoding error:
    unknown field "spec.foo", unknown field "spec.ports[0].bar"`.
    """
    paths = strict_unknown(obj, group, version, kind)
    if not paths:
        return None
    detail = "strict decoding error: " + ", ".join(unknown_field_warnings(paths))
    return _cannot_handle(kind, version, detail)
