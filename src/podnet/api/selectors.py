"""Label and field selectors, parsed and matched the way the Kubernetes API server does it.

Label selectors come in two shapes: the string form used in `?labelSelector=` and by
`kubectl -l` (`a=b,c in (x,y),!d`), and the structured `LabelSelector` object used in specs
(`matchLabels` + `matchExpressions`). Both become one frozen `LabelSelector`.

Field selectors (`?fieldSelector=`) only support `=`, `==` and `!=` over a small per-kind
table of fields; asking for any other field is a 400 with Kubernetes' own message, because
clients (kubectl, informers) show that message to users verbatim.

Errors are raised as `StatusError` (400 BadRequest) with the same words as
k8s.io/apimachinery/pkg/labels and pkg/fields, so a user can search for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podnet.api import errors

# --- label key / value syntax (k8s.io/apimachinery/pkg/util/validation) -----------------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Go's `validation.RegexError`: note the doubled space before each ` or`."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i:
            out += " or "
        out += f"'{example}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_subdomain_errors(value: str) -> list[str]:
    """`IsDNS1123Subdomain`: the messages, empty when valid."""
    errs: list[str] = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """`IsQualifiedName`: label keys, annotation keys, finalizers and the like."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def label_value_errors(value: str) -> list[str]:
    """`IsValidLabelValue`."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def go_quote(value: str) -> str:
    """Go's `%q` for the common cases (what field errors print for strings)."""
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_string_slice(values: Iterable[str]) -> str:
    """Go's `%#v` of a `[]string`."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


# --- label selectors ----------------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"

_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One clause of a label selector, e.g. `tier in (web,api)`; values are kept sorted."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (GREATER_THAN, LESS_THAN):
            # Both sides must be int64s; anything else simply does not match.
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except (KeyError, ValueError, IndexError):
                return False
            return have > want if self.operator == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        if self.operator in (GREATER_THAN, LESS_THAN):
            sym = ">" if self.operator == GREATER_THAN else "<"
            return f"{self.key}{sym}{self.values[0] if self.values else ''}"
        return f"{self.key}{self.operator}{self.values[0] if self.values else ''}"


def _field_error(path: str, value: str, detail: str) -> str:
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


def _requirement(key: str, op: str, values: Iterable[str], path: str | None) -> Requirement:
    """`labels.NewRequirement`: validates key and values, raising with Go's aggregate text.

    `path` is None for the string parser, where Go prints a nil field path as `<nil>`
    for the key and `values[i][key]` for values (that is what users really see).
    """
    vals = sorted(set(values)) if op in (IN, NOT_IN) else list(values)
    problems: list[str] = []
    key_path = f"{path}.key" if path else "key"
    values_path = f"{path}.values" if path else "values"
    key_errs = qualified_name_errors(key)
    if key_errs:
        problems.append(_field_error(key_path, key, "; ".join(key_errs)))
    if op in (IN, NOT_IN) and not vals:
        problems.append(
            f"{values_path}: Invalid value: {go_string_slice(vals)}: "
            "for 'in', 'notin' operators, values set can't be empty"
        )
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(vals) != 1:
        problems.append(
            f"{values_path}: Invalid value: {go_string_slice(vals)}: "
            "exact-match compatibility requires one single value"
        )
    elif op in (EXISTS, DOES_NOT_EXIST) and vals:
        problems.append(
            f"{values_path}: Invalid value: {go_string_slice(vals)}: "
            "values set must be empty for exists and does not exist"
        )
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            problems.append(
                f"{values_path}: Invalid value: {go_string_slice(vals)}: "
                "for 'Gt', 'Lt' operators, exactly one value is required"
            )
        for i, v in enumerate(vals):
            if not re.fullmatch(r"[+-]?[0-9]+", v):
                problems.append(
                    _field_error(
                        f"{values_path}[{i}]", v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, v in enumerate(vals):
        v_errs = label_value_errors(v)
        if v_errs:
            problems.append(_field_error(f"{values_path}[{i}][{key}]", v, "; ".join(v_errs)))
    if problems:
        raise _SelectorSyntaxError(
            problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        )
    return Requirement(key, op, tuple(vals))


class _SelectorSyntaxError(Exception):
    """Internal: a parse failure carrying Go's exact error text."""


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector. `empty` selects everything; `nothing()` selects nothing.

    The two differ on purpose: a `LabelSelector` object that is nil (absent) selects
    nothing in most APIs (`metav1.LabelSelectorAsSelector`), while `{}` selects everything.
    """

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(selects_nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches every object)."""
        return not self.selects_nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.selects_nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the string form; raise a 400 with Kubernetes' message on bad syntax."""
        try:
            reqs = _Parser(text).parse()
        except _SelectorSyntaxError as e:
            raise errors.bad_request(str(e)) from None
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @classmethod
    def from_set(cls, labels: Mapping[str, str] | None) -> LabelSelector:
        """Equality on every pair (a Service's `spec.selector`); None or {} selects all."""
        if not labels:
            return cls()
        return cls(tuple(Requirement(k, EQUALS, (v,)) for k, v in sorted(labels.items())))

    @classmethod
    def from_object(cls, obj: Mapping[str, Any] | None) -> LabelSelector:
        """A `LabelSelector` object (`matchLabels` + `matchExpressions`).

        None selects nothing and `{}` selects everything, as in `LabelSelectorAsSelector`.
        Invalid content raises a 400 with the apimachinery message.
        """
        if obj is None:
            return cls.nothing()
        match_labels: Mapping[str, Any] = obj.get("matchLabels") or {}
        expressions: list[Mapping[str, Any]] = obj.get("matchExpressions") or []
        if not match_labels and not expressions:
            return cls()
        reqs: list[Requirement] = []
        try:
            for k, v in match_labels.items():
                reqs.append(_requirement(str(k), EQUALS, [str(v)], None))
            for expr in expressions:
                op = _EXPRESSION_OPS.get(str(expr.get("operator", "")))
                if op is None:
                    raise _SelectorSyntaxError(
                        f"{go_quote(str(expr.get('operator', '')))} is not a valid label "
                        "selector operator"
                    )
                reqs.append(
                    _requirement(
                        str(expr.get("key", "")), op, [str(v) for v in expr.get("values") or []],
                        None,
                    )
                )
        except _SelectorSyntaxError as e:
            raise errors.bad_request(str(e)) from None
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))


_EXPRESSION_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


# Lexer tokens. Identifiers are anything that is neither whitespace nor a special symbol;
# `in`/`notin` are keywords only where an operator is expected.
_IDENT, _END, _COMMA, _OPEN, _CLOSE, _OP, _BANG, _IN, _NOTIN, _ERROR = range(10)
_SPECIAL = "=!(),><"
_SYMBOLS = {
    "!": _BANG, "!=": _OP, "=": _OP, "==": _OP, ">": _OP, "<": _OP,
    "(": _OPEN, ")": _CLOSE, ",": _COMMA,
}


def _lex(text: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            tokens.append((_END, ""))
            return tokens
        ch = text[i]
        if ch in _SPECIAL:
            # Longest symbol that is a known token, as the Go scanner does.
            j = i + 1
            while j < n and text[j] in _SPECIAL and text[i : j + 1] in _SYMBOLS:
                j += 1
            lit = text[i:j]
            tokens.append((_SYMBOLS.get(lit, _ERROR), lit))
            i = j
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in " \t\r\n":
            j += 1
        lit = text[i:j]
        tokens.append(({"in": _IN, "notin": _NOTIN}.get(lit, _IDENT), lit))
        i = j


class _Parser:
    """A recursive-descent twin of apimachinery's label parser, error texts included."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.tokens[self.pos]
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def _next(self, values: bool = True) -> tuple[int, str]:
        item = self._peek(values)
        if self.pos < len(self.tokens) - 1:
            self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok in (_IDENT, _BANG):
                try:
                    reqs.append(self._requirement())
                except _SelectorSyntaxError as e:
                    raise _SelectorSyntaxError(f"unable to parse requirement: {e}") from None
                tok, lit = self._next()
                if tok == _END:
                    return reqs
                if tok == _COMMA:
                    tok2, lit2 = self._peek()
                    if tok2 not in (_IDENT, _BANG):
                        raise _SelectorSyntaxError(
                            f"found '{lit2}', expected: identifier after ','"
                        )
                    continue
                raise _SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
            if tok == _END:
                return reqs
            raise _SelectorSyntaxError(
                f"found '{lit}', expected: !, identifier, or 'end of string'"
            )

    def _requirement(self) -> Requirement:
        op = ""
        tok, lit = self._next()
        if tok == _BANG:
            op = DOES_NOT_EXIST
            tok, lit = self._next()
        if tok != _IDENT:
            raise _SelectorSyntaxError(f"found '{lit}', expected: identifier")
        key = lit
        key_errs = qualified_name_errors(key)
        if key_errs:
            raise _SelectorSyntaxError(_field_error("<nil>", key, "; ".join(key_errs)))
        nxt, _ = self._peek()
        if op == DOES_NOT_EXIST or nxt in (_END, _COMMA):
            # `!a=b` yields `!a` here; the caller then trips over the `=`, as in Go.
            return _requirement(key, op or EXISTS, [], None)
        tok, lit = self._next(values=False)
        if tok == _IN:
            op = IN
        elif tok == _NOTIN:
            op = NOT_IN
        elif tok == _OP:
            op = {">": GREATER_THAN, "<": LESS_THAN}.get(lit, lit)
        else:
            raise _SelectorSyntaxError(
                f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}"
            )
        values = self._set_values() if op in (IN, NOT_IN) else self._exact_value()
        return _requirement(key, op, values, None)

    def _set_values(self) -> list[str]:
        tok, lit = self._next()
        if tok != _OPEN:
            raise _SelectorSyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok in (_IDENT, _COMMA):
            values = self._identifier_list()
            tok2, _ = self._next()
            if tok2 != _CLOSE:
                raise _SelectorSyntaxError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self._next()
            return [""]
        raise _SelectorSyntaxError(f"found '{lit}', expected: ',', ')' or identifier")

    def _identifier_list(self) -> list[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._next()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self._peek()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return sorted(values)
                raise _SelectorSyntaxError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2, _ = self._peek()
                if tok2 == _CLOSE:
                    values.add("")
                    return sorted(values)
                if tok2 == _COMMA:
                    self._next()
                    values.add("")
                continue
            raise _SelectorSyntaxError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> list[str]:
        tok, _ = self._peek()
        if tok in (_END, _COMMA):
            return [""]
        tok, lit = self._next()
        if tok == _IDENT:
            return [lit]
        raise _SelectorSyntaxError(f"found '{lit}', expected: identifier")


# --- field selectors ----------------------------------------------------------------------

_META_FIELDS = ("metadata.name", "metadata.namespace")

# Kinds with their own field-label conversion (pkg/apis/core/v1/conversion.go and friends).
# Kinds not listed accept only metadata.name/namespace, with a different error message.
FIELD_LABELS: dict[tuple[str, str], frozenset[str]] = {
    ("", "Pod"): frozenset({
        *_META_FIELDS, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
        "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
        "status.podIPs", "status.nominatedNodeName",
    }),
    # Node and Namespace are cluster-scoped: Kubernetes does not list metadata.namespace.
    ("", "Node"): frozenset({"metadata.name", "spec.unschedulable"}),
    ("", "Namespace"): frozenset({"metadata.name", "status.phase"}),
    ("", "Secret"): frozenset({*_META_FIELDS, "type"}),
    ("", "Service"): frozenset({*_META_FIELDS, "spec.clusterIP", "spec.type"}),
    ("", "ReplicationController"): frozenset({*_META_FIELDS, "status.replicas"}),
    ("", "Event"): frozenset({
        *_META_FIELDS, "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    }),
    ("apps", "ReplicaSet"): frozenset({*_META_FIELDS, "status.replicas"}),
}

# Old v1 clients send spec.host; the API server rewrites it to spec.nodeName.
_FIELD_ALIASES: dict[tuple[str, str], dict[str, str]] = {
    ("", "Pod"): {"spec.host": "spec.nodeName"},
}


def _check_field(group: str, kind: str, name: str, extra: frozenset[str]) -> str:
    if name in extra:
        return name
    supported = FIELD_LABELS.get((group, kind))
    if supported is None:
        if name in _META_FIELDS:
            return name
        raise errors.bad_request(
            f'{go_quote(name)} is not a known field selector: only "metadata.name", '
            '"metadata.namespace"'
        )
    alias = _FIELD_ALIASES.get((group, kind), {}).get(name)
    if alias:
        return alias
    if name not in supported:
        raise errors.bad_request(f"field label not supported: {name}")
    return name


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool = False

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return not equal if self.negate else equal

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negate else '='}{_escape(self.value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector; `matches` reads the named fields out of a raw object."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @classmethod
    def parse(
        cls,
        text: str,
        kind: str | None = None,
        group: str = "",
        extra_fields: Iterable[str] = (),
    ) -> FieldSelector:
        """Parse `a=b,c!=d`. With `kind`, check every field against what that kind supports
        (`extra_fields` adds a CRD's selectableFields) and raise Kubernetes' 400 otherwise."""
        reqs: list[FieldRequirement] = []
        extra = frozenset(extra_fields)
        for part in sorted(_split_terms(text)):
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise errors.bad_request(
                    f"invalid selector: '{text}'; can't understand '{part}'"
                )
            lhs, op, rhs = split
            value = _unescape(rhs)
            name = lhs if kind is None else _check_field(group, kind, lhs, extra)
            reqs.append(FieldRequirement(name, value, op == "!="))
        return cls(tuple(reqs))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not self.requirements:
            return True
        fields = selectable_fields(obj)
        for r in self.requirements:
            if r.field not in fields:
                fields[r.field] = _stringify(_dig(obj, r.field))
        return all(r.matches(fields) for r in self.requirements)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not backslash-escaped."""
    if not text:
        return []
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape(value: str) -> str:
    if "\\" not in value and "=" not in value and "," not in value:
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise errors.bad_request(
                    f"invalid field selector: invalid escape sequence: \\{ch}"
                )
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise errors.bad_request(
                f"invalid field selector: unescaped character in value: {ord(ch)}"
            )
        else:
            out.append(ch)
    if escaped:
        raise errors.bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dig(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def selectable_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    """The field set Kubernetes matches a field selector against, per kind.

    Computed values (a pod's `spec.hostNetwork` defaulting to "false", an Event's `source`
    falling back to `reportingController`) follow each kind's registry `GetAttrs`.
    """
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    fields = {"metadata.name": str(meta.get("name", "")),
              "metadata.namespace": str(meta.get("namespace", ""))}
    kind = obj.get("kind", "")
    spec: Mapping[str, Any] = obj.get("spec") or {}
    status: Mapping[str, Any] = obj.get("status") or {}
    if kind == "Pod":
        pod_ips = status.get("podIPs") or []
        first_ip = pod_ips[0].get("ip", "") if pod_ips else status.get("podIP", "")
        fields.update({
            "spec.nodeName": _stringify(spec.get("nodeName")),
            "spec.restartPolicy": _stringify(spec.get("restartPolicy")),
            "spec.schedulerName": _stringify(spec.get("schedulerName")),
            "spec.serviceAccountName": _stringify(spec.get("serviceAccountName")),
            "spec.hostNetwork": _stringify(bool(spec.get("hostNetwork", False))),
            "status.phase": _stringify(status.get("phase")),
            "status.podIP": _stringify(first_ip),
            "status.nominatedNodeName": _stringify(status.get("nominatedNodeName")),
        })
    elif kind == "Node":
        fields["spec.unschedulable"] = _stringify(bool(spec.get("unschedulable", False)))
    elif kind == "Namespace":
        fields["status.phase"] = _stringify(status.get("phase"))
    elif kind == "Secret":
        fields["type"] = _stringify(obj.get("type"))
    elif kind == "Service":
        fields["spec.clusterIP"] = _stringify(spec.get("clusterIP"))
        fields["spec.type"] = _stringify(spec.get("type"))
    elif kind in ("ReplicaSet", "ReplicationController"):
        fields["status.replicas"] = _stringify(int(status.get("replicas", 0) or 0))
    elif kind == "Event":
        involved: Mapping[str, Any] = obj.get("involvedObject") or {}
        source = (obj.get("source") or {}).get("component") or obj.get("reportingComponent", "")
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                  "fieldPath"):
            fields[f"involvedObject.{f}"] = _stringify(involved.get(f))
        fields["reason"] = _stringify(obj.get("reason"))
        fields["reportingComponent"] = _stringify(obj.get("reportingComponent"))
        fields["source"] = _stringify(source)
        fields["type"] = _stringify(obj.get("type"))
    return fields
