"""Label and field selectors: parse, match, and fail with Kubernetes' own words."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.api.errors import StatusError
from podnet.api.selectors import FieldSelector, LabelSelector

QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

# selector text                                  labels                              match
MATCHES: list[tuple[str, dict[str, str], bool]] = [
    ("", {}, True),
    ("", {"a": "b"}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {}, True),  # absent label passes !=
    ("a!=b", {"a": "b"}, False),
    ("env in (prod,staging)", {"env": "prod"}, True),
    ("env in (prod,staging)", {"env": "dev"}, False),
    ("env in (prod,staging)", {}, False),
    ("env notin (prod)", {}, True),
    ("env notin (prod)", {"env": "prod"}, False),
    ("tier", {"tier": ""}, True),
    ("tier", {}, False),
    ("!tier", {}, True),
    ("!tier", {"tier": "web"}, False),
    ("a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j", {"a": "b", "c": "d", "g": "x", "i": "1"}, True),
    ("a=b,c==d,e!=f,g in (x,y),h notin (z),i,!j",
     {"a": "b", "c": "d", "g": "x", "i": "1", "j": "1"}, False),
    ("a = b , c in ( x )", {"a": "b", "c": "x"}, True),  # whitespace is insignificant
    ("a=", {"a": ""}, True),  # empty value
    ("x in (foo,,baz)", {"x": ""}, True),  # empty member
    ("n>5", {"n": "7"}, True),
    ("n<5", {"n": "7"}, False),
    ("n>5", {"n": "x"}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


BAD_LABEL_SELECTORS = [
    ("a in", "unable to parse requirement: found '' expected: '('"),
    ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("a,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a@b", f'unable to parse requirement: <nil>: Invalid value: "a@b": {QUALIFIED}'),
    ("a=b@", f'unable to parse requirement: values[0][a]: Invalid value: "b@": {LABEL_VALUE}'),
    ("n>x", 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' '
            "operators, the value must be an integer"),
]


@pytest.mark.parametrize(("text", "message"), BAD_LABEL_SELECTORS)
def test_label_selector_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        LabelSelector.parse(text)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    assert info.value.message == message


def test_parsed_selector_prints_sorted_by_key() -> None:
    assert str(LabelSelector.parse("z=1,a in (y,x),!m")) == "a in (x,y),!m,z=1"


def test_nil_and_empty_selectors_differ() -> None:
    assert LabelSelector.from_object(None).matches({"app": "x"}) is False
    assert LabelSelector.from_object({}).matches({"app": "x"}) is True
    assert LabelSelector.from_object({}).empty
    assert not LabelSelector.nothing().empty
    assert LabelSelector.everything().empty
    # A Service selector map: empty means "everything" as a selector.
    assert LabelSelector.from_set(None).empty
    assert LabelSelector.from_set({"app": "web"}).matches({"app": "web", "x": "y"})


OBJECT_SELECTORS: list[tuple[dict[str, Any], dict[str, str], bool]] = [
    ({"matchLabels": {"app": "web"}}, {"app": "web"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
     {"tier": "b"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": "x"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "web"}, False),
]


@pytest.mark.parametrize(("obj", "labels", "expected"), OBJECT_SELECTORS)
def test_label_selector_object(obj: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.from_object(obj).matches(labels) is expected


def test_label_selector_object_bad_operator() -> None:
    with pytest.raises(StatusError) as info:
        LabelSelector.from_object({"matchExpressions": [{"key": "a", "operator": "Has"}]})
    assert info.value.message == '"Has" is not a valid label selector operator'


def test_label_selector_object_in_without_values() -> None:
    with pytest.raises(StatusError) as info:
        LabelSelector.from_object({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert info.value.message == (
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    )


# --- field selectors ----------------------------------------------------------------------

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {"nodeName": "node-a", "restartPolicy": "Always", "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}]},
}

FIELD_MATCHES = [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name!=web-1", False),
    ("metadata.namespace=shop,status.phase!=Running", False),
    ("status.phase!=Pending,spec.nodeName=node-a", True),
    ("spec.hostNetwork=false", True),  # absent hostNetwork reads as "false"
    ("status.podIP=10.244.0.5", True),
    ("spec.host=node-a", True),  # old clients' alias for spec.nodeName
    ("spec.nodeName=", False),
]


@pytest.mark.parametrize(("text", "expected"), FIELD_MATCHES)
def test_field_selector_matches_pod(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text, "Pod").matches(POD) is expected


BAD_FIELD_SELECTORS = [
    ("Pod", "", "foo=bar", "field label not supported: foo"),
    ("Namespace", "", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("Ingress", "networking.k8s.io", "foo.bar=baz",
     '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("Pod", "", "status.phase",
     "invalid selector: 'status.phase'; can't understand 'status.phase'"),
    ("Pod", "", r"metadata.name=a\b", r"invalid field selector: invalid escape sequence: \b"),
]


@pytest.mark.parametrize(("kind", "group", "text", "message"), BAD_FIELD_SELECTORS)
def test_field_selector_errors(kind: str, group: str, text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        FieldSelector.parse(text, kind, group)
    assert info.value.code == 400
    assert info.value.message == message


SUPPORTED = [
    ("Event", "", "involvedObject.kind=Pod,reason=Started,type=Normal,source=kubelet"),
    ("Secret", "", "type=Opaque"),
    ("Node", "", "spec.unschedulable=false"),
    ("Namespace", "", "status.phase=Active"),
    ("Service", "", "spec.clusterIP=None,spec.type=ClusterIP"),
    ("ReplicaSet", "apps", "status.replicas=0"),
    ("ConfigMap", "", "metadata.name=x,metadata.namespace=y"),
]


@pytest.mark.parametrize(("kind", "group", "text"), SUPPORTED)
def test_field_selector_supported_fields(kind: str, group: str, text: str) -> None:
    assert not FieldSelector.parse(text, kind, group).empty


def test_field_selector_event_source_falls_back_to_reporting_controller() -> None:
    event = {"kind": "Event", "metadata": {"name": "e"}, "reportingComponent": "podnet-agent",
             "involvedObject": {"kind": "Pod", "name": "web-1"}}
    sel = FieldSelector.parse("source=podnet-agent,involvedObject.name=web-1", "Event")
    assert sel.matches(event)


def test_field_selector_escaped_comma_in_value() -> None:
    sel = FieldSelector.parse(r"metadata.name=a\,b")
    assert sel.matches({"metadata": {"name": "a,b"}})
