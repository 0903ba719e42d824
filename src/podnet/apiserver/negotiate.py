"""Content negotiation: which body format a request carries and which answer it wants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from podnet.api import errors
from podnet.util import jsonutil

TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"
JSON_CT = "application/json"
PROTOBUF_CT = "application/vnd.kubernetes.protobuf"

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}


@dataclass(frozen=True, slots=True)
class Wants:
    table: bool = False
    table_version: str = "v1"
    partial_metadata: bool = False


def parse_accept(accept: str) -> Wants:
    """The first acceptable media range wins, as in the apiserver's negotiation."""
    for raw in accept.split(","):
        parts = [p.strip() for p in raw.split(";")]
        base = parts[0]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if (base in ("application/json", "*/*", "application/*")
                and params.get("as") == "Table"
                and params.get("g", "meta.k8s.io") == "meta.k8s.io"):
            return Wants(table=True, table_version=params.get("v", "v1"))
        if params.get("as") in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return Wants(partial_metadata=True)
        if base in ("application/json", "*/*", "application/*", "application/yaml", ""):
            return Wants()
        if base == PROTOBUF_CT:
            continue
    return Wants()


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def decode_body(body: bytes, content_type: str) -> Any:
    """Decode a JSON or YAML request body into plain data; 400 on anything malformed."""
    mt = media_type(content_type)
    if not body:
        raise errors.bad_request("the body of the request was empty")
    if mt in ("application/yaml", "application/apply-patch+yaml", "application/x-yaml",
              "text/yaml"):
        try:
            data = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise errors.bad_request(
                f"error converting YAML to JSON: {str(exc).splitlines()[0]}"
            ) from exc
        return data
    try:
        return jsonutil.loads(body)
    except ValueError as exc:
        raise errors.bad_request(
            f"couldn't get version/kind; json parse error: {exc}"
        ) from exc
