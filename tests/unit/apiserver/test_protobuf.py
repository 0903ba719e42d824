"""Protobuf request bodies, built the way client-go's gogo-protobuf marshals them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podnet.api.errors import StatusError
from podnet.apiserver.protobuf import decode, fields, unwrap

# --------------------------------------------------------------------------- a tiny encoder


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 goes out as 64-bit two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ln(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    # gogo writes every non-pointer field, so empty strings appear on the wire too.
    return b"k8s\x00" + ln(1, ln(1, api_version) + ln(2, kind)) + ln(2, raw) + ln(
        3, encoding) + ln(4, "")


GO_ZERO_TIME = -62135596800


def empty_object_meta(zero_time: bytes = b"") -> bytes:
    """ObjectMeta{} as gogo marshals it: empty strings, zero generation, and the zero
    creationTimestamp as an empty message (what kubectl 1.32 was seen to send)."""
    return (ln(1, "") + ln(2, "") + ln(3, "") + ln(4, "") + ln(5, "") + ln(6, "")
            + vi(7, 0) + ln(8, zero_time))


def resource_attributes(**attrs: str) -> bytes:
    order = ["namespace", "verb", "group", "version", "resource", "subresource", "name"]
    return b"".join(ln(i + 1, attrs.get(k, "")) for i, k in enumerate(order))


# --------------------------------------------------------------------------- kubectl auth can-i


def test_can_i_create_pods() -> None:
    """`kubectl auth can-i create pods` in namespace default."""
    spec = ln(1, resource_attributes(namespace="default", verb="create", resource="pods"))
    body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview",
                    ln(1, empty_object_meta()) + ln(2, spec) + ln(3, vi(1, 0) + vi(4, 0)))
    assert decode(body) == {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create",
                                        "resource": "pods"}},
    }


def test_can_i_get_pod_logs_by_name_in_group() -> None:
    spec = ln(1, resource_attributes(namespace="web", verb="get", group="apps",
                                     resource="deployments", subresource="scale", name="api"))
    body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", ln(2, spec))
    assert decode(body)["spec"]["resourceAttributes"] == {
        "namespace": "web", "verb": "get", "group": "apps", "resource": "deployments",
        "subresource": "scale", "name": "api",
    }


def test_can_i_non_resource_url() -> None:
    """`kubectl auth can-i get /healthz`."""
    spec = ln(2, ln(1, "/healthz") + ln(2, "get"))
    body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview",
                    ln(1, empty_object_meta()) + ln(2, spec))
    assert decode(body)["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}


def test_can_i_list() -> None:
    """`kubectl auth can-i --list` sends a SelfSubjectRulesReview for the namespace."""
    body = envelope("authorization.k8s.io/v1", "SelfSubjectRulesReview",
                    ln(1, empty_object_meta()) + ln(2, ln(1, "default")))
    assert decode(body) == {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {"namespace": "default"},
    }


# --------------------------------------------------------------------------- other reviews


def test_subject_access_review_with_user_groups_extra() -> None:
    extra = ln(5, ln(1, "scopes") + ln(2, ln(1, "a") + ln(1, "b")))
    spec = (ln(1, resource_attributes(namespace="default", verb="list", resource="secrets"))
            + ln(3, "jane") + ln(4, "devs") + ln(4, "system:authenticated") + extra
            + ln(6, "u-1"))
    body = envelope("authorization.k8s.io/v1", "SubjectAccessReview", ln(2, spec))
    assert decode(body)["spec"] == {
        "resourceAttributes": {"namespace": "default", "verb": "list", "resource": "secrets"},
        "user": "jane",
        "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["a", "b"]},
        "uid": "u-1",
    }
    local = envelope("authorization.k8s.io/v1", "LocalSubjectAccessReview",
                     ln(1, ln(3, "default")) + ln(2, ln(3, "bob")))
    assert decode(local)["metadata"] == {"namespace": "default"}
    assert decode(local)["spec"] == {"user": "bob"}


def test_token_review() -> None:
    body = envelope("authentication.k8s.io/v1", "TokenReview",
                    ln(2, ln(1, "eyJhbGciOi.x.y") + ln(2, "https://kubernetes.default.svc")))
    assert decode(body)["spec"] == {"token": "eyJhbGciOi.x.y",
                                    "audiences": ["https://kubernetes.default.svc"]}


def test_create_token() -> None:
    """`kubectl create token default --duration=10m --bound-object-kind=Pod ...`."""
    meta = ln(1, "default") + ln(3, "default") + ln(11, ln(1, "app") + ln(2, "web"))
    bound = ln(1, "Pod") + ln(2, "v1") + ln(3, "web-0") + ln(4, "3f1c")
    spec = ln(1, "api") + ln(1, "vault") + vi(4, 600) + ln(3, bound)
    body = envelope("authentication.k8s.io/v1", "TokenRequest", ln(1, meta) + ln(2, spec))
    assert decode(body) == {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": "default", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"audiences": ["api", "vault"], "expirationSeconds": 600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0",
                                    "uid": "3f1c"}},
    }


def test_create_token_without_audiences_still_has_the_list() -> None:
    body = envelope("authentication.k8s.io/v1", "TokenRequest", ln(2, b""))
    assert decode(body)["spec"] == {"audiences": []}


def test_self_subject_review_and_eviction() -> None:
    whoami = envelope("authentication.k8s.io/v1", "SelfSubjectReview",
                      ln(1, empty_object_meta()))
    assert decode(whoami) == {"kind": "SelfSubjectReview",
                              "apiVersion": "authentication.k8s.io/v1", "metadata": {}}
    eviction = envelope("policy/v1", "Eviction",
                        ln(1, ln(1, "web-0") + ln(3, "default"))
                        + ln(2, vi(1, 0) + ln(4, "Background") + ln(5, "All")))
    assert decode(eviction)["deleteOptions"] == {
        "gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"],
    }


def test_metadata_times_and_negative_int64() -> None:
    meta = (ln(1, "x") + ln(8, vi(1, 1736510400)) + vi(10, -1)
            + ln(13, ln(5, "v1") + ln(1, "Pod") + ln(3, "p") + ln(4, "u") + vi(6, 1)))
    body = envelope("authentication.k8s.io/v1", "SelfSubjectReview", ln(1, meta))
    assert decode(body)["metadata"] == {
        "name": "x",
        "creationTimestamp": "2025-01-10T12:00:00Z",
        "deletionGracePeriodSeconds": -1,
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u",
                             "controller": True}],
    }


def test_zero_time_in_go_seconds_is_unset_too() -> None:
    meta = empty_object_meta(zero_time=vi(1, GO_ZERO_TIME) + vi(2, 0))
    body = envelope("authentication.k8s.io/v1", "SelfSubjectReview", ln(1, meta))
    assert decode(body)["metadata"] == {}


def test_unknown_fields_are_skipped() -> None:
    unknown = vi(99, 7) + ln(98, "zz") + varint(97 << 3 | 1) + b"\x00" * 8 + varint(
        96 << 3 | 5) + b"\x00" * 4
    body = envelope("authorization.k8s.io/v1", "SelfSubjectRulesReview",
                    unknown + ln(2, ln(1, "kube-system") + unknown))
    assert decode(body)["spec"] == {"namespace": "kube-system"}


# --------------------------------------------------------------------------- errors


def status_of(body: bytes) -> dict[str, Any]:
    with pytest.raises(StatusError) as info:
        decode(body)
    return info.value.to_status()


def test_unknown_kind_is_415() -> None:
    st = status_of(envelope("v1", "Bogus", b""))
    assert st["code"] == 415 and st["reason"] == "UnsupportedMediaType"
    assert "Bogus" in st["message"]
    assert status_of(envelope("example.com/v1", "Widget", b""))["code"] == 415
    assert status_of(envelope("v1", "ConfigMap.DataEntry", b""))["code"] == 415


def test_content_encoding_is_415() -> None:
    st = status_of(envelope("authentication.k8s.io/v1", "TokenReview", b"", encoding="gzip"))
    assert st["code"] == 415


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"TokenReview"}',  # JSON sent with the protobuf content type
        b"k8s\x00\x0a\x05ab",  # truncated
        b"k8s\x00" + varint(1 << 3 | 3),  # group wire type
        b"k8s\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # endless varint
    ],
)
def test_garbage_is_400(body: bytes) -> None:
    st = status_of(body)
    assert st["code"] == 400 and st["reason"] == "BadRequest"


def test_malformed_raw_is_400() -> None:
    st = status_of(envelope("authentication.k8s.io/v1", "TokenReview", ln(2, b"\x0a\x09ab")))
    assert st["code"] == 400


def test_unwrap_and_fields() -> None:
    env = unwrap(envelope("policy/v1", "Eviction", b"\x08\x01"))
    assert (env.api_version, env.kind, env.raw) == ("policy/v1", "Eviction", b"\x08\x01")
    assert list(fields(vi(1, 150) + ln(2, "hi"))) == [(1, 0, 150), (2, 2, b"hi")]


# --------------------------------------------------------------------------- real captures

# Bodies kubectl v1.32.4 sent to a logging server (hex), with what they must decode to.
CAPTURED = [
    (  # kubectl auth can-i create pods
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a"
        "656374416363657373526576696577123f0a100a0012001a0022002a0032003800420012210a1f0a07"
        "64656661756c7412066372656174651a0022002a04706f647332003a001a08080012001a0020001a00"
        "2200",
        {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
    ),
    (  # kubectl auth can-i --list -n web
        "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a"
        "65637452756c6573526576696577121f0a100a0012001a0022002a0032003800420012050a03776562"
        "1a04180022001a002200",
        {"namespace": "web"},
    ),
    (  # kubectl create token default --duration=10m --audience=api --audience=vault
       #   --bound-object-kind=Pod --bound-object-name=web --bound-object-uid=3f1c
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e5265"
        "7175657374123f0a100a0012001a0022002a0032003800420012250a036170690a057661756c741a14"
        "0a03506f64120276311a0377656222043366316320d8041a040a0012001a002200",
        {"audiences": ["api", "vault"], "expirationSeconds": 600,
         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "3f1c"}},
    ),
]


@pytest.mark.parametrize(("hex_body", "spec"), CAPTURED)
def test_bodies_captured_from_kubectl(hex_body: str, spec: dict[str, Any]) -> None:
    obj = decode(bytes.fromhex(hex_body))
    assert obj["metadata"] == {}
    assert obj["spec"] == spec


def test_auth_whoami_captured() -> None:
    body = bytes.fromhex(
        "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c66537562"
        "6a656374526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200")
    assert decode(body) == {"kind": "SelfSubjectReview",
                            "apiVersion": "authentication.k8s.io/v1", "metadata": {}}


# --------------------------------------------------------------------------- typed creates

# POST bodies kubectl v1.32.5 sent to a logging server (hex); each must decode to exactly
# what `<the same command> --dry-run=client -o json` prints (checked when captured).
CREATE_CAPTURED = [
    (  # kubectl create configmap demo --from-literal=k=v
        "6b3873000a0f0a0276311209436f6e6669674d6170121e0a140a0464656d6f12001a0022002a00320038"
        "00420012060a016b1201761a002200",
        json.loads(
            '{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"demo","creationTimesta'
            'mp":null},"data":{"k":"v"}}'
        ),
    ),
    (  # kubectl create namespace x
        "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a00320038004200"
        "12001a020a001a002200",
        json.loads(
            '{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x","creationTimestamp"'
            ':null},"spec":{},"status":{}}'
        ),
    ),
    (  # kubectl create serviceaccount sa1
        "6b3873000a140a027631120e536572766963654163636f756e7412150a130a0373613112001a0022002a"
        "003200380042001a002200",
        json.loads(
            '{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa1","creationTim'
            'estamp":null}}'
        ),
    ),
    (  # kubectl create secret generic s1 --from-literal=password=hunter2
        "6b3873000a0c0a0276311206536563726574122b0a120a02733112001a0022002a003200380042001213"
        "0a0870617373776f7264120768756e746572321a001a002200",
        json.loads(
            '{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1","creationTimestamp":n'
            'ull},"data":{"password":"aHVudGVyMg=="}}'
        ),
    ),
    (  # kubectl create deployment web --image=nginx:1.27 --replicas=3 --port=80
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bd010a1f0a0377656212001a0022"
        "002a003200380042005a0a0a036170701203776562128b010803120c0a0a0a0361707012037765621a71"
        "0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562125112330a056e67696e7812"
        "0a6e67696e783a312e32372a00320a0a001000185022002a0042006a007200800100880100900100a201"
        "001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c080010"
        "0018002000280038001a002200",
        json.loads(
            '{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTi'
            'mestamp":null,"labels":{"app":"web"}},"spec":{"replicas":3,"selector":{"matchLab'
            'els":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"'
            'app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":'
            '[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}'
        ),
    ),
    (  # kubectl create rolebinding rb --clusterrole=view --user=jane --serviceaccount=default:sa1
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c65"
        "42696e64696e671291010a120a02726212001a0022002a0032003800420012290a045573657212197262"
        "61632e617574686f72697a6174696f6e2e6b38732e696f1a046a616e65220012200a0e53657276696365"
        "4163636f756e7412001a03736131220764656661756c741a2e0a19726261632e617574686f72697a6174"
        "696f6e2e6b38732e696f120b436c7573746572526f6c651a04766965771a002200",
        json.loads(
            '{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"n'
            'ame":"rb","creationTimestamp":null},"subjects":[{"kind":"User","apiGroup":"rbac.'
            'authorization.k8s.io","name":"jane"},{"kind":"ServiceAccount","name":"sa1","name'
            'space":"default"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Clu'
            'sterRole","name":"view"}}'
        ),
    ),
    (  # kubectl create service clusterip svc1 --tcp=80:8080
        "6b3873000a0d0a027631120753657276696365126c0a210a047376633112001a0022002a003200380042"
        "005a0b0a0361707012047376633112430a1b0a0738302d38303830120354435018502207080010903f1a"
        "002800120b0a036170701204737663311a002209436c757374657249503a00420052005a00600068001a"
        "020a001a002200",
        json.loads(
            '{"kind":"Service","apiVersion":"v1","metadata":{"name":"svc1","creationTimestamp'
            '":null,"labels":{"app":"svc1"}},"spec":{"ports":[{"name":"80-8080","protocol":"T'
            'CP","port":80,"targetPort":8080}],"selector":{"app":"svc1"},"type":"ClusterIP"},'
            '"status":{"loadBalancer":{}}}'
        ),
    ),
    (  # kubectl create job j1 --image=busybox -- echo hi
        "6b3873000a0f0a0862617463682f763112034a6f621284010a120a026a3112001a0022002a0032003800"
        "4200126432620a100a0012001a0022002a00320038004200124e122b0a026a31120762757379626f781a"
        "046563686f1a0268692a0042006a007200800100880100900100a201001a054e65766572320042004a00"
        "52005800600068008201008a01009a0100c201001a082000280030003a001a002200",
        json.loads(
            '{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j1","creationTimestamp'
            '":null},"spec":{"template":{"metadata":{"creationTimestamp":null},"spec":{"conta'
            'iners":[{"name":"j1","image":"busybox","command":["echo","hi"],"resources":{}}],'
            '"restartPolicy":"Never"}}},"status":{}}'
        ),
    ),
    (  # kubectl create ingress ing1 --rule=foo.com/bar=svc1:8080
        "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e6772657373124b0a140a"
        "04696e673112001a0022002a00320038004200122f1a2d0a07666f6f2e636f6d12220a200a1e0a042f62"
        "6172120f220d0a047376633112050a0010903f1a0545786163741a020a001a002200",
        json.loads(
            '{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ing1",'
            '"creationTimestamp":null},"spec":{"rules":[{"host":"foo.com","http":{"paths":[{"'
            'path":"/bar","backend":{"service":{"name":"svc1","port":{"number":8080}}},"pathT'
            'ype":"Exact"}]}}]},"status":{"loadBalancer":{}}}'
        ),
    ),
    (  # kubectl create role r1 --verb=get,list --resource=pods
        "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c65"
        "12290a120a02723112001a0022002a0032003800420012130a036765740a046c69737412001a04706f64"
        "731a002200",
        json.loads(
            '{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r'
            '1","creationTimestamp":null},"rules":[{"verbs":["get","list"],"apiGroups":[""],"'
            'resources":["pods"]}]}'
        ),
    ),
]


@pytest.mark.parametrize(("hex_body", "expected"), CREATE_CAPTURED)
def test_typed_creates_captured_from_kubectl(hex_body: str, expected: dict[str, Any]) -> None:
    assert decode(bytes.fromhex(hex_body)) == expected


def test_captured_details() -> None:
    by_kind = {json.loads(e)["kind"] if isinstance(e, str) else e["kind"]: e
               for _, e in CREATE_CAPTURED}
    assert by_kind["Secret"]["data"] == {"password": "aHVudGVyMg=="}  # base64 bytes
    assert by_kind["Service"]["spec"]["ports"][0]["targetPort"] == 8080  # int-or-string
    dep = by_kind["Deployment"]["spec"]
    assert dep["replicas"] == 3 and dep["strategy"] == {}
    assert dep["template"]["spec"]["containers"][0]["resources"] == {}
    assert by_kind["RoleBinding"]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}


# --------------------------------------------------------------------------- generic rules


def test_special_types() -> None:
    # Event (events.k8s.io/v1): eventTime MicroTime, series.lastObservedTime, deprecated
    # Time fields; a pointer int32 kept at 0.
    micro = ln(2, vi(1, 1767225600) + vi(2, 123456789))
    series = ln(3, vi(1, 0) + ln(2, vi(1, 1767225600)))
    body = envelope("events.k8s.io/v1", "Event",
                    ln(1, ln(1, "e")) + micro + series + ln(11, "Normal")
                    + vi(15, 2) + ln(13, vi(1, 1767225601)))
    obj = decode(body)
    assert obj["eventTime"] == "2026-01-01T00:00:00.123456Z"
    assert obj["series"]["lastObservedTime"] == "2026-01-01T00:00:00.000000Z"
    assert obj["deprecatedFirstTimestamp"] == "2026-01-01T00:00:01Z"
    assert obj["deprecatedCount"] == 2 and obj["type"] == "Normal"
    assert obj["metadata"] == {"name": "e", "creationTimestamp": None}


def test_int_or_string_quantity_and_pointer_zero() -> None:
    # Deployment spec: replicas=0 (pointer), strategy.rollingUpdate.maxSurge "25%",
    # maxUnavailable 0; a container asking for 100m CPU.
    rolling = ln(2, ln(1, vi(1, 0) + vi(2, 0)) + ln(2, vi(1, 1) + ln(3, "25%")))
    strategy = ln(4, ln(1, "RollingUpdate") + rolling)
    limits = ln(2, ln(1, "cpu") + ln(2, ln(1, "100m")))
    container = ln(1, "c") + ln(2, "img") + ln(8, limits)
    template = ln(3, ln(2, ln(2, container)))
    body = envelope("apps/v1", "Deployment", ln(2, vi(1, 0) + strategy + template))
    spec = decode(body)["spec"]
    assert spec["replicas"] == 0
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
    assert spec["template"]["spec"]["containers"] == [
        {"name": "c", "image": "img", "resources": {"requests": {"cpu": "100m"}}}]
    assert spec["selector"] is None  # *LabelSelector without omitempty: Go writes null


def test_inline_slices_and_raw_extension() -> None:
    # Pod volume: VolumeSource is json-inline; a configMap source's LocalObjectReference too.
    volume = ln(1, "cfg") + ln(2, ln(19, ln(1, ln(1, "app-config"))))
    spec = ln(1, volume) + ln(2, ln(1, "c"))
    pod = decode(envelope("v1", "Pod", ln(2, spec)))
    assert pod["spec"]["volumes"] == [{"name": "cfg", "configMap": {"name": "app-config"}}]
    # ControllerRevision.data is a RawExtension holding JSON.
    rev = decode(envelope("apps/v1", "ControllerRevision",
                          ln(2, ln(1, b'{"spec":{"x":1}}')) + vi(3, 4)))
    assert rev["data"] == {"spec": {"x": 1}} and rev["revision"] == 4


def test_durations() -> None:
    from podnet.apiserver.protobuf import go_duration

    cases = {0: "0s", 600 * 10**9: "10m0s", 1_500_000_000: "1.5s", 3_600 * 10**9: "1h0m0s",
             300_000_000: "300ms", 1_500: "1.5µs", 7: "7ns", -90 * 10**9: "-1m30s"}
    assert {k: go_duration(k) for k in cases} == cases


def test_message_names() -> None:
    from podnet.apiserver.protobuf import message_name

    assert message_name("v1", "ConfigMap") == "k8s.io.api.core.v1.ConfigMap"
    assert message_name("rbac.authorization.k8s.io/v1", "RoleBinding") == (
        "k8s.io.api.rbac.v1.RoleBinding")
    assert message_name("networking.k8s.io/v1", "Ingress") == "k8s.io.api.networking.v1.Ingress"
    assert message_name("v1", "DeleteOptions") == (
        "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    assert message_name("v1", "Time") is None
    assert message_name("apiextensions.k8s.io/v1", "CustomResourceDefinition") is None


def test_wrong_wire_type_is_400() -> None:
    # ConfigMap.immutable (bool) sent as a string.
    st = status_of(envelope("v1", "ConfigMap", ln(4, "yes")))
    assert st["code"] == 400
