"""Protobuf request bodies, built the way client-go's gogo-protobuf marshals them."""

from __future__ import annotations

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
    st = status_of(envelope("v1", "Pod", b""))
    assert st["code"] == 415 and st["reason"] == "UnsupportedMediaType"
    assert "Pod" in st["message"]


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
