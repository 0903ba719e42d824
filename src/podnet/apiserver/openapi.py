"""A minimal OpenAPI v3 that makes `kubectl apply` validate on the server, silently.

What kubectl 1.32 reads (measured, shared/reference/kubectl-wire.md §2):
- `GET /openapi/v3`: a root naming one document per group version, each fetched at its
  `serverRelativeURL` (with a content hash, so clients may cache it for good);
- in each document, for every kind, a `patch` operation carrying a single-object
  `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter. With that,
  kubectl sends `fieldValidation=Strict` and skips client-side validation (which would
  need the v2 protobuf document, which we never serve).
- The `patch` request body must NOT list `application/strategic-merge-patch+json`:
  if it does, kubectl computes strategic merge patches from these schemas and warns on
  every apply unless they are complete. Left out, kubectl quietly uses its compiled-in
  structs for built-in kinds (and JSON merge patch for the rest).

Schemas are optional: pass the Kubernetes 1.32 JSON-schema `$defs` (as shipped by
kubernetes-validate) and each document gets `components.schemas` for its kinds and
everything they reference, converted to OpenAPI 3.0 form (useful to `kubectl explain`).

Pure: the caller builds `OpenAPIDocs` once per Registry change and serves the bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from podnet.api.resources import Registry, ResourceType, Subresource

ROOT_PREFIX = "/openapi/v3/"
_DEFS_REF = "#/$defs/"
_COMPONENTS_REF = "#/components/schemas/"
_PATCH_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
# Content types the PATCH body may have; strategic merge patch deliberately missing.
PATCH_CONTENT_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)


def gv_path(group: str, version: str) -> str:
    """The root document's key for a group version: `api/v1` or `apis/<g>/<v>`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def hash_of(doc: Mapping[str, Any]) -> str:
    """A stable content hash (upper-case hex sha512 of canonical JSON), as upstream uses."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha512(canonical.encode()).hexdigest().upper()


# ---------------------------------------------------------------------------------------
# Operations


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": type_, "uniqueItems": True},
    }


_DRY_RUN = _query(
    "dryRun",
    "When present, indicates that modifications should not be persisted. Valid values "
    "are: - All: all dry run stages will be processed",
)
_FIELD_MANAGER = _query(
    "fieldManager", "fieldManager is a name associated with the actor or entity that is "
    "making these changes."
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore "
    "- Warn - Strict",
)
_FORCE = _query(
    "force", "Force is going to \"force\" Apply requests. It means user will re-acquire "
    "conflicting fields owned by other people.", "boolean"
)
_PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
_WATCH = _query("watch", "Watch for changes to the described resources.", "boolean")


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


_NAMESPACE_PARAM = _path_param("namespace", "object name and auth scope, such as for teams "
                                            "and projects")


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _schema_ref(name: str | None) -> dict[str, Any]:
    return {"$ref": _COMPONENTS_REF + name} if name else {"type": "object"}


def _json_response(schema: dict[str, Any], *codes: str) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}, "application/yaml": {"schema": schema}}
    return {code: {"description": "OK" if code == "200" else "Created", "content": content}
            for code in codes}


def _op_id(action: str, rt: ResourceType, suffix: str = "", *, namespaced: bool) -> str:
    group = "".join(p.capitalize() for p in (rt.group or "core").split(".")[:1])
    scope = "Namespaced" if namespaced else ""
    return f"{action}{group}{rt.version.capitalize()}{scope}{rt.kind}{suffix}"


def _operation(
    action: str,
    verb: str,
    gvk: dict[str, str],
    op_id: str,
    params: list[dict[str, Any]],
    *,
    body: dict[str, Any] | None = None,
    response: dict[str, Any],
    codes: tuple[str, ...] = ("200",),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": f"{action} the specified {gvk['kind']}",
        "operationId": op_id,
        "parameters": params,
        "responses": {**_json_response(response, *codes), "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": verb,
        # A single object here; schemas use a list. kubectl matches on it exactly.
        "x-kubernetes-group-version-kind": gvk,
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _patch_body() -> dict[str, Any]:
    schema = _schema_ref(_PATCH_SCHEMA)
    return {"content": {ct: {"schema": schema} for ct in PATCH_CONTENT_TYPES}, "required": True}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": schema}}, "required": True}


def _item_ops(
    rt: ResourceType,
    gvk: dict[str, str],
    verbs: tuple[str, ...],
    schema: dict[str, Any],
    suffix: str,
) -> dict[str, Any]:
    ns = rt.namespaced
    ops: dict[str, Any] = {}
    if "get" in verbs:
        ops["get"] = _operation("read", "get", gvk, _op_id("read", rt, suffix, namespaced=ns),
                                [], response=schema)
    if "update" in verbs:
        ops["put"] = _operation(
            "replace", "put", gvk, _op_id("replace", rt, suffix, namespaced=ns),
            [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=_json_body(schema),
            response=schema, codes=("200", "201"))
    if "patch" in verbs:
        ops["patch"] = _operation(
            "partially update", "patch", gvk, _op_id("patch", rt, suffix, namespaced=ns),
            [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], body=_patch_body(),
            response=schema, codes=("200", "201"))
    if "delete" in verbs and not suffix:
        ops["delete"] = _operation(
            "delete", "delete", gvk, _op_id("delete", rt, namespaced=ns), [_DRY_RUN],
            response=_schema_ref(None), codes=("200", "202"))
    return ops


def _paths_for(rt: ResourceType, schema_name: str | None) -> dict[str, Any]:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    collection = (
        f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    )
    gvk = _gvk(rt.group, rt.version, rt.kind)
    schema = _schema_ref(schema_name)
    scope_params = [_NAMESPACE_PARAM] if rt.namespaced else []
    name_param = _path_param("name", f"name of the {rt.kind}")
    paths: dict[str, Any] = {}

    coll: dict[str, Any] = {}
    if "list" in rt.verbs:
        coll["get"] = _operation(
            "list", "list", gvk, _op_id("list", rt, namespaced=rt.namespaced), [_WATCH],
            response=_schema_ref(None))
    if "create" in rt.verbs:
        coll["post"] = _operation(
            "create", "post", gvk, _op_id("create", rt, namespaced=rt.namespaced),
            [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=_json_body(schema),
            response=schema, codes=("200", "201", "202"))
    if "deletecollection" in rt.verbs:
        coll["delete"] = _operation(
            "delete collection of", "deletecollection", gvk,
            _op_id("deletecollection", rt, namespaced=rt.namespaced), [_DRY_RUN],
            response=_schema_ref(None))
    if coll:
        paths[collection] = {**coll, "parameters": [*scope_params, _PRETTY]}
    if rt.namespaced and "list" in rt.verbs:
        paths[f"{base}/{rt.plural}"] = {
            "get": _operation("list", "list", gvk,
                              _op_id("list", rt, "ForAllNamespaces", namespaced=False),
                              [_WATCH], response=_schema_ref(None)),
            "parameters": [_PRETTY],
        }

    item = _item_ops(rt, gvk, rt.verbs, schema, "")
    if item:
        paths[f"{collection}/{{name}}"] = {**item,
                                           "parameters": [name_param, *scope_params, _PRETTY]}
    for sub in rt.subresources:
        sub_ops = _subresource_ops(rt, sub, schema_name)
        if sub_ops:
            paths[f"{collection}/{{name}}/{sub.name}"] = {
                **sub_ops, "parameters": [name_param, *scope_params, _PRETTY]}
    return paths


def _subresource_ops(rt: ResourceType, sub: Subresource, schema_name: str | None) -> dict[str, Any]:
    """Only subresources answering the object or a Scale get typed operations.

    Their PATCH carries the response kind's GVK, so every PATCH kubectl may match for a
    GVK also carries `fieldValidation` (it stops at the first match it finds).
    """
    if sub.kind != rt.kind and sub.kind != "Scale":
        return {}
    group = sub.group if sub.group else rt.group
    version = sub.version if sub.version else rt.version
    gvk = _gvk(group, version, sub.kind)
    schema = _schema_ref(schema_name if sub.kind == rt.kind else None)
    return _item_ops(rt, gvk, sub.verbs, schema, sub.name.capitalize())


# ---------------------------------------------------------------------------------------
# Schemas (optional)

_SPECIAL_SCHEMAS: dict[str, dict[str, Any]] = {
    # Upstream's OpenAPI 3 form for the two oneOf types JSON schema spells out.
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "type": "string", "format": "int-or-string",
        "description": "IntOrString is a type that can hold an int32 or a string.",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "type": "string",
        "description": "Quantity is a fixed-point representation of a number.",
    },
}


def _convert(schema: Any) -> Any:
    """JSON-schema (draft 2020, nullable via type lists) to OpenAPI 3.0 schema objects."""
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$schema", "$id"):
            continue
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        elif key == "properties" and isinstance(value, Mapping):
            out["properties"] = {k: _convert(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert(value)
        elif key in ("oneOf", "anyOf", "allOf") and isinstance(value, list):
            out[key] = [_convert(v) for v in value]
        elif key == "$ref" and isinstance(value, str):
            out["$ref"] = _COMPONENTS_REF + value.removeprefix(_DEFS_REF)
        else:
            out[key] = value
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores siblings of $ref; upstream wraps it in allOf to keep them.
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _refs(schema: Any) -> set[str]:
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_DEFS_REF):
                found.add(ref.removeprefix(_DEFS_REF))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def kind_schema_names(definitions: Mapping[str, Any]) -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from each schema's GVK extension."""
    names: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []) if isinstance(
                schema, Mapping) else []:
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            names.setdefault(key, name)
    return names


def component_schemas(definitions: Mapping[str, Any], roots: list[str]) -> dict[str, Any]:
    """`components.schemas`: the named schemas and everything they reference, converted."""
    wanted: dict[str, Any] = {}
    todo = [r for r in roots if r in definitions]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        raw = definitions[name]
        wanted[name] = _SPECIAL_SCHEMAS.get(name) or _convert(raw)
        todo.extend(r for r in _refs(raw) if r in definitions and r not in wanted)
    return {k: wanted[k] for k in sorted(wanted)}


# ---------------------------------------------------------------------------------------
# Documents


def group_version_doc(
    registry: Registry,
    group: str,
    version: str,
    *,
    definitions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI v3 document for one group version (`/openapi/v3/apis/<g>/<v>`)."""
    names = kind_schema_names(definitions) if definitions else {}
    paths: dict[str, Any] = {}
    roots = [_PATCH_SCHEMA]
    for rt in sorted(registry.in_group_version(group, version), key=lambda r: r.plural):
        schema_name = names.get((rt.group, rt.version, rt.kind)) if rt.structured else None
        if schema_name:
            roots.append(schema_name)
        paths.update(_paths_for(rt, schema_name))
    schemas = component_schemas(definitions, roots) if definitions else {}
    schemas.setdefault(_PATCH_SCHEMA, {
        "type": "object",
        "description": "Patch is provided to give a concrete name and type to the Kubernetes "
                       "PATCH request body.",
    })
    title = f"Kubernetes {gv_path(group, version)}"
    return {
        "openapi": "3.0.0",
        "info": {"title": title, "version": "v1.32.0"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas},
    }


def root(
    registry: Registry, *, definitions: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `/openapi/v3` root: one `serverRelativeURL` with a content hash per document."""
    return build(registry, definitions=definitions).root


@dataclass(frozen=True, slots=True)
class OpenAPIDocs:
    """Every document for one Registry state, with its hash; build once, serve many."""

    root: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # "api/v1" -> doc
    hashes: dict[str, str] = field(default_factory=dict)

    def document(self, path: str) -> dict[str, Any] | None:
        """The document for `api/v1` or `apis/<g>/<v>` (leading `/openapi/v3/` allowed)."""
        return self.documents.get(path.removeprefix(ROOT_PREFIX).strip("/"))

    def is_current(self, path: str, hash_param: str | None) -> bool:
        """Whether a `?hash=` names this exact content, so the answer may be cached
        immutably (upstream sends `Cache-Control: public, immutable` then)."""
        return bool(hash_param) and self.hashes.get(
            path.removeprefix(ROOT_PREFIX).strip("/")) == hash_param


def build(registry: Registry, *, definitions: Mapping[str, Any] | None = None) -> OpenAPIDocs:
    """All group-version documents plus the root that points at them."""
    documents: dict[str, dict[str, Any]] = {}
    hashes: dict[str, str] = {}
    for group, versions in registry.groups():
        for version in versions:
            key = gv_path(group, version)
            doc = group_version_doc(registry, group, version, definitions=definitions)
            documents[key] = doc
            hashes[key] = hash_of(doc)
    root_doc = {
        "paths": {
            key: {"serverRelativeURL": f"{ROOT_PREFIX}{key}?hash={hashes[key]}"}
            for key in documents
        }
    }
    return OpenAPIDocs(root_doc, documents, hashes)
