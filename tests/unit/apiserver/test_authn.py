"""Authentication: certificates, static tokens, ServiceAccount JWTs, anonymous."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from podnet.apiserver.authn import (
    Authenticator,
    BoundObject,
    InvalidToken,
    TokenIssuer,
    UserInfo,
    bearer_token,
    load_token_file,
    parse_token_csv,
    user_from_peercert,
)
from podnet.apiserver.pki import Pki, ensure_pki

NOW = 1_700_000_000
ISS = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def issuer(pki: Pki) -> TokenIssuer:
    return TokenIssuer(pki.sa_key_pem)


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")

    def dec(part: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return out

    return dec(header), dec(payload)


# --- certificates -----------------------------------------------------------------------


def test_peercert_dict_gives_cn_and_organizations() -> None:
    peercert = {
        "subject": (
            (("organizationName", "system:masters"),),
            (("organizationName", "devs"),),
            (("commonName", "kubernetes-admin"),),
        )
    }
    assert user_from_peercert(peercert) == UserInfo(
        "kubernetes-admin", groups=("system:masters", "devs", "system:authenticated")
    )


def test_peercert_der_form(pki: Pki) -> None:
    from cryptography import x509

    der = x509.load_pem_x509_certificate(pki.admin_cert_pem).public_bytes(
        serialization.Encoding.DER
    )
    user = user_from_peercert(der)
    assert user is not None
    assert user.name == "kubernetes-admin"
    assert user.groups == ("system:masters", "system:authenticated")


def test_server_certificate_is_not_a_client_identity(pki: Pki) -> None:
    from cryptography import x509

    der = x509.load_pem_x509_certificate(pki.server_cert_pem).public_bytes(
        serialization.Encoding.DER
    )
    assert user_from_peercert(der) is None


@pytest.mark.parametrize("peercert", [None, {}, b"", {"subject": ((("organizationName", "o"),),)}])
def test_no_usable_certificate(peercert: Any) -> None:
    assert user_from_peercert(peercert) is None


# --- bearer header ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),  # the Python kubernetes client
        ("BEARER abc", "abc"),
        ("  Bearer abc  ", "abc"),
        ("Bearer abc def", "abc"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic dXNlcjpwdw==", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# --- static tokens ------------------------------------------------------------------------

TOKENS_CSV = """\ufeffsecret1,alice,uid-1,"devs,ops"
secret2,bob,uid-2
,nobody,uid-3
secret1,alice2,uid-4,"system:authenticated"
"""


def test_token_csv_like_kube_apiserver() -> None:
    tokens = parse_token_csv(TOKENS_CSV)
    assert set(tokens) == {"secret1", "secret2"}
    assert tokens["secret2"] == UserInfo("bob", "uid-2", ("system:authenticated",))
    # later duplicates win; system:authenticated is not added twice
    assert tokens["secret1"] == UserInfo("alice2", "uid-4", ("system:authenticated",))


def test_token_csv_groups_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('t,alice,u1,"devs,ops"\n\n')
    assert load_token_file(path)["t"].groups == ("devs", "ops", "system:authenticated")
    with pytest.raises(ValueError, match="at least 3 columns"):
        parse_token_csv("token,user\n")


# --- ServiceAccount tokens ----------------------------------------------------------------


def test_issued_token_has_kubernetes_claims(issuer: TokenIssuer, pki: Pki) -> None:
    token, exp = issuer.issue(
        "default", "default", "sa-uid", (), 3600,
        BoundObject("Pod", "web-1", "pod-uid", node_name="node-0", node_uid="node-uid"),
        NOW, jti="jti-1",
    )  # fmt: skip
    assert exp == NOW + 3600
    header, claims = claims_of(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.kid and len(issuer.kid) == 43
    assert claims == {
        "aud": [ISS],
        "exp": NOW + 3600,
        "iat": NOW,
        "iss": ISS,
        "jti": "jti-1",
        "kubernetes.io": {
            "namespace": "default",
            "node": {"name": "node-0", "uid": "node-uid"},
            "pod": {"name": "web-1", "uid": "pod-uid"},
            "serviceaccount": {"name": "default", "uid": "sa-uid"},
        },
        "nbf": NOW,
        "sub": "system:serviceaccount:default:default",
    }
    # Anyone holding sa.pub (as the API server's verifier does) can check it.
    pub = serialization.load_pem_public_key(pki.sa_pub_pem)
    assert isinstance(pub, rsa.RSAPublicKey)
    decoded = jwt.decode(
        token, pub, algorithms=["RS256"], audience=ISS, options={"verify_exp": False}
    )
    assert decoded["sub"] == "system:serviceaccount:default:default"


def test_kid_is_stable_per_key(pki: Pki) -> None:
    assert TokenIssuer(pki.sa_key_pem).kid == TokenIssuer(public_key_pem=pki.sa_pub_pem).kid
    jwks = TokenIssuer(public_key_pem=pki.sa_pub_pem).jwks()
    assert jwks["keys"][0]["kid"] == TokenIssuer(pki.sa_key_pem).kid
    assert jwks["keys"][0]["kty"] == "RSA"


def test_verify_bound_token_gives_service_account_user(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue(
        "team", "builder", "sa-uid", (), 3600, BoundObject("Pod", "web-1", "pod-uid"), NOW, jti="j"
    )
    user = issuer.verify(token, NOW + 10)
    assert user == UserInfo(
        "system:serviceaccount:team:builder",
        uid="sa-uid",
        groups=(
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated",
        ),
        extra={
            "authentication.kubernetes.io/pod-name": ("web-1",),
            "authentication.kubernetes.io/pod-uid": ("pod-uid",),
            "authentication.kubernetes.io/credential-id": ("JTI=j",),
        },
    )


def test_unbound_token_has_no_pod_extra(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("team", "builder", "sa-uid", now=NOW)
    user = issuer.verify(token, NOW)
    assert "authentication.kubernetes.io/pod-name" not in user.extra
    assert "pod" not in claims_of(token)[1]["kubernetes.io"]


def test_expiry_not_before_and_leeway(issuer: TokenIssuer) -> None:
    token, exp = issuer.issue("ns", "sa", "u", (), 600, None, NOW)
    issuer.verify(token, exp + 59)  # within the 60 s clock-skew leeway
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token, exp + 61)
    with pytest.raises(InvalidToken, match="not valid yet"):
        issuer.verify(token, NOW - 120)


def test_audience_must_overlap(pki: Pki, issuer: TokenIssuer) -> None:
    vault, _ = issuer.issue("ns", "sa", "u", ["vault"], 3600, None, NOW)
    with pytest.raises(InvalidToken):
        issuer.verify(vault, NOW)
    assert claims_of(vault)[1]["aud"] == ["vault"]
    both, _ = issuer.issue("ns", "sa", "u", ["vault", ISS], 3600, None, NOW)
    assert issuer.verify(both, NOW).name == "system:serviceaccount:ns:sa"
    vault_server = TokenIssuer(public_key_pem=pki.sa_pub_pem, api_audiences=["vault"])
    assert vault_server.verify(vault, NOW).name == "system:serviceaccount:ns:sa"


def test_foreign_key_wrong_issuer_and_tampering_are_refused(issuer: TokenIssuer) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = TokenIssuer(
        other_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    forged, _ = other.issue("kube-system", "admin", "u", (), 3600, None, NOW)
    with pytest.raises(InvalidToken):
        issuer.verify(forged, NOW)

    token, _ = issuer.issue("ns", "sa", "u", (), 3600, None, NOW)
    header, _payload, sig = token.split(".")
    claims = claims_of(token)[1]
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    evil = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{evil}.{sig}", NOW)

    elsewhere = TokenIssuer(issuer_private_pem(issuer), issuer="https://other")
    wrong_iss, _ = elsewhere.issue("ns", "sa", "u", [ISS], 3600, None, NOW)
    with pytest.raises(InvalidToken):
        issuer.verify(wrong_iss, NOW)


def issuer_private_pem(issuer: TokenIssuer) -> bytes:
    key = issuer._private
    assert key is not None
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_verify_only_issuer_cannot_sign(pki: Pki) -> None:
    with pytest.raises(ValueError, match="cannot sign"):
        TokenIssuer(public_key_pem=pki.sa_pub_pem).issue("ns", "sa", "u", now=NOW)


# --- the request authenticator ----------------------------------------------------------


ADMIN_CERT = {"subject": ((("organizationName", "system:masters"),),
                          (("commonName", "kubernetes-admin"),))}  # fmt: skip


def make_authn(issuer: TokenIssuer, **kw: Any) -> Authenticator:
    return Authenticator(
        static_tokens=parse_token_csv('static-tok,alice,uid-a,"devs"\n'),
        token_issuer=issuer,
        clock=lambda: NOW,
        **kw,
    )


def test_sources_in_order(issuer: TokenIssuer) -> None:
    authn = make_authn(issuer)
    sa_token, _ = issuer.issue("default", "default", "sa-uid", now=NOW)

    def name(cert: Any, header: str | None) -> str | None:
        user = authn.authenticate(cert, header)
        return user.name if user else None

    assert name(ADMIN_CERT, None) == "kubernetes-admin"
    # a verified certificate wins over a token, as in kube-apiserver's union order
    assert name(ADMIN_CERT, "Bearer nonsense") == "kubernetes-admin"
    assert authn.authenticate(None, "Bearer static-tok") == UserInfo(
        "alice", "uid-a", ("devs", "system:authenticated")
    )
    assert name({}, f"bearer {sa_token}") == "system:serviceaccount:default:default"
    anon = authn.authenticate(None, None)
    assert anon == UserInfo("system:anonymous", groups=("system:unauthenticated",))
    assert anon.is_anonymous
    # a non-bearer scheme is not a credential this server knows: anonymous
    assert authn.authenticate(None, "Basic dXNlcjpwdw==") == anon


def test_bad_tokens_are_401_not_anonymous(issuer: TokenIssuer) -> None:
    authn = make_authn(issuer)
    expired, _ = issuer.issue("ns", "sa", "u", (), 600, None, NOW - 7200)
    assert authn.authenticate(None, "Bearer wrong") is None
    assert authn.authenticate(None, "Bearer a.b.c") is None
    assert authn.authenticate(None, f"Bearer {expired}") is None
    assert Authenticator().authenticate(None, "Bearer anything") is None


async def test_binding_callback_is_consulted_for_service_account_tokens(
    issuer: TokenIssuer,
) -> None:
    calls: list[tuple[str, str, str, str | None, str | None]] = []
    alive = {"pod-uid"}

    async def still_valid(
        ns: str, sa: str, sa_uid: str, pod: str | None, pod_uid: str | None
    ) -> bool:
        calls.append((ns, sa, sa_uid, pod, pod_uid))
        return pod_uid in alive

    authn = make_authn(issuer, still_valid=still_valid)
    token, _ = issuer.issue("team", "builder", "sa-uid", (), 3600,
                            BoundObject("Pod", "web-1", "pod-uid"), NOW)  # fmt: skip
    user = await authn.authenticate_request(None, f"Bearer {token}")
    assert user is not None and user.name == "system:serviceaccount:team:builder"
    assert calls == [("team", "builder", "sa-uid", "web-1", "pod-uid")]

    alive.clear()  # the pod is gone: its token must stop working
    assert await authn.authenticate_request(None, f"Bearer {token}") is None

    # certificates and static tokens never reach the callback
    calls.clear()
    assert (await authn.authenticate_request(ADMIN_CERT, None)) is not None
    assert (await authn.authenticate_request(None, "Bearer static-tok")) is not None
    assert calls == []


def test_user_info_json_and_hash() -> None:
    user = UserInfo("u", "1", ("g",), {"k": ("v",)})
    assert user.to_json() == {"username": "u", "uid": "1", "groups": ["g"], "extra": {"k": ["v"]}}
    assert hash(user) == hash(UserInfo("u", "1", ("g",), {"k": ("v",)}))
