"""Errors that know their HTTP code and Kubernetes `Status` reason.

Handlers raise these; one middleware in the API server renders them as `Status`
objects. Messages use Kubernetes' own wording so users can search for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One field-level cause, as in `Status.details.causes[]`."""

    reason: str  # e.g. "FieldValueInvalid", "FieldValueRequired", "FieldValueNotSupported"
    field: str  # e.g. "spec.ports[0].nodePort"
    message: str  # e.g. "Invalid value: 30007: provided port is already allocated"

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def qualified_resource(resource: str, group: str = "") -> str:
    """`pods` for the core group, `deployments.apps` otherwise (as Kubernetes prints it)."""
    return f"{resource}.{group}" if group else resource


@dataclass
class StatusError(Exception):
    """Base of every API error; `to_status()` is what goes on the wire."""

    message: str
    code: int = 500
    reason: str = "InternalError"
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after: int = 0

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_json() for c in self.causes]
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        f'{qualified_resource(resource, group)} "{name}" not found',
        404,
        "NotFound",
        name=name,
        group=group,
        kind=resource,
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        f'{qualified_resource(resource, group)} "{name}" already exists',
        409,
        "AlreadyExists",
        name=name,
        group=group,
        kind=resource,
    )


def conflict(resource: str, name: str, group: str = "", why: str = "") -> StatusError:
    why = why or (
        "the object has been modified; please apply your changes to the latest "
        "version and try again"
    )
    return StatusError(
        f'Operation cannot be fulfilled on {qualified_resource(resource, group)} "{name}": {why}',
        409,
        "Conflict",
        name=name,
        group=group,
        kind=resource,
    )


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> StatusError:
    """422 Invalid, worded exactly like the apiserver:
    `Service "x" is invalid: spec.ports[0].port: Required value`."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    detail = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return StatusError(
        f'{qualified} "{name}" is invalid: {detail}',
        422,
        "Invalid",
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )


def bad_request(message: str, causes: list[Cause] | None = None) -> StatusError:
    return StatusError(message, 400, "BadRequest", causes=causes or [])


def forbidden(message: str, resource: str = "", name: str = "", group: str = "") -> StatusError:
    return StatusError(message, 403, "Forbidden", name=name, group=group, kind=resource)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(message, 401, "Unauthorized")


def gone(message: str) -> StatusError:
    """410 for a watch/list from a compacted resourceVersion."""
    return StatusError(message, 410, "Expired")


def method_not_allowed(message: str) -> StatusError:
    return StatusError(message, 405, "MethodNotAllowed")


def unsupported_media_type(message: str) -> StatusError:
    return StatusError(message, 415, "UnsupportedMediaType")


def not_acceptable(message: str) -> StatusError:
    return StatusError(message, 406, "NotAcceptable")


def too_large(message: str = "the request entity is too large") -> StatusError:
    return StatusError(message, 413, "RequestEntityTooLarge")


def internal(message: str) -> StatusError:
    return StatusError(f"Internal error occurred: {message}", 500, "InternalError")


def service_unavailable(message: str) -> StatusError:
    return StatusError(message, 503, "ServiceUnavailable")


# Field-cause helpers, named for the Kubernetes field.ErrorType they stand for.
def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def invalid_value(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", path, f"Invalid value: {_fmt(value)}: {detail}")


def not_supported(path: str, value: Any, supported: list[str]) -> Cause:
    valid = ", ".join(f'"{s}"' for s in supported)
    return Cause(
        "FieldValueNotSupported",
        path,
        f"Unsupported value: {_fmt(value)}: supported values: {valid}",
    )


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", path, f"Duplicate value: {_fmt(value)}")


def forbidden_field(path: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", path, f"Forbidden: {detail}")


def too_long(path: str, value: Any, limit: int) -> Cause:
    return Cause(
        "FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes"
    )


def _fmt(value: Any) -> str:
    """Format a value the way Go's field errors do: strings quoted, numbers bare."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
