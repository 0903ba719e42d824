"""Authentication: who is making this request?

Three sources, tried in kube-apiserver's order (the first that recognises the request
wins):

1. a client certificate the TLS layer already verified against the cluster CA
   (user = CN, groups = O);
2. `Authorization: Bearer <token>`: a static token from a `--token-auth-file`-style CSV,
   or a ServiceAccount JWT signed with the cluster's SA key;
3. nothing: the anonymous user. Whether anonymous requests are allowed is the caller's
   decision, as with `--anonymous-auth`.

A bearer token that is present but not valid is an error (401), never anonymous:
kube-apiserver refuses to downgrade a bad credential to "no credential".

Every authenticated user also gets the group `system:authenticated`, as kube-apiserver's
group adder does.

The checks here are synchronous and pure apart from the token file loader. Whether a
bound ServiceAccount token's pod/ServiceAccount still exists needs the store, so that
check is an async callback the API server passes in (`StillValid`), called by
`Authenticator.authenticate_request` only for ServiceAccount tokens.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Extra keys Kubernetes sets on users authenticated with a bound ServiceAccount token.
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
# TokenRequest validation refuses shorter lifetimes ("may not specify a duration less
# than 10 minutes"); the issuer itself does not enforce it.
MIN_EXPIRATION_SECONDS = 600
# Allowed clock skew for nbf/exp, as go-jose's default leeway used by kube-apiserver.
LEEWAY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated (or anonymous) identity, as `user.Info` in Kubernetes.

    `extra` is left out of the hash so the view can key caches; it still takes part in
    equality.
    """

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    @property
    def is_anonymous(self) -> bool:
        return self.name == ANONYMOUS

    def to_json(self) -> dict[str, Any]:
        """The `UserInfo` shape of TokenReview / SelfSubjectReview status."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def anonymous() -> UserInfo:
    return UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))


class InvalidToken(Exception):
    """A bearer token was presented but is not valid; the request gets 401."""


# --- client certificates ----------------------------------------------------------


def user_from_peercert(peercert: Mapping[str, Any] | bytes | None) -> UserInfo | None:
    """The user named by a client certificate, or None when there is none (or no CN).

    Accepts both forms `SSLObject.getpeercert()` returns: the decoded dict, or DER bytes
    (`binary_form=True`). Either way the caller must take it from a connection whose
    context verified the chain (our `server_ssl_context` does: `CERT_OPTIONAL` still
    verifies any certificate presented). An empty dict means "no certificate".
    """
    if not peercert:
        return None
    if isinstance(peercert, bytes | bytearray):
        cert = x509.load_der_x509_certificate(bytes(peercert))
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            if ExtendedKeyUsageOID.CLIENT_AUTH not in eku and (
                ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
            ):
                return None
        except x509.ExtensionNotFound:
            pass
        cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = [
            str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ]
    else:
        cns, orgs = [], []
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cns.append(value)
                elif key == "organizationName":
                    orgs.append(value)
    if not cns or not cns[0]:
        # kube-apiserver's CommonNameUserConversion: no CN, not this authenticator's user.
        return None
    return UserInfo(cns[0], groups=_with_authenticated(orgs))


# --- static tokens ------------------------------------------------------------------


def parse_token_csv(text: str) -> dict[str, UserInfo]:
    """Parse a kube-apiserver `--token-auth-file`: `token,user,uid[,"group1,group2"]`.

    As kube-apiserver does: fewer than 3 columns is an error, an empty token is skipped,
    a later duplicate wins, the file may start with a UTF-8 BOM.
    """
    text = text.removeprefix("\ufeff")
    tokens: dict[str, UserInfo] = {}
    for lineno, record in enumerate(csv.reader(io.StringIO(text), skipinitialspace=True), 1):
        if not record or all(not c.strip() for c in record):
            continue
        if len(record) < 3:
            raise ValueError(
                f"token file must have at least 3 columns (token, user name, user uid), "
                f"found {len(record)} on line {lineno}"
            )
        token, name, uid = record[0], record[1], record[2]
        if not token:
            continue
        groups = record[3].split(",") if len(record) >= 4 and record[3] else []
        tokens[token] = UserInfo(name, uid=uid, groups=_with_authenticated(groups))
    return tokens


def load_token_file(path: Path) -> dict[str, UserInfo]:
    """Read and parse a token CSV file (see `parse_token_csv`)."""
    return parse_token_csv(path.read_text(encoding="utf-8"))


# --- ServiceAccount tokens ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoundObject:
    """The object a token is bound to (TokenRequest `spec.boundObjectRef`).

    `kind` is `Pod`, `Secret` or `Node`. For a Pod, the node it runs on may be given
    too; Kubernetes 1.32 then records it in the token (ServiceAccountTokenPodNodeInfo).
    """

    kind: str
    name: str
    uid: str
    node_name: str = ""
    node_uid: str = ""


@dataclass(frozen=True, slots=True)
class ServiceAccountRef:
    """What a verified ServiceAccount token claims, for the binding-validity check."""

    namespace: str
    name: str
    uid: str
    pod_name: str | None = None
    pod_uid: str | None = None
    secret_name: str | None = None
    secret_uid: str | None = None


def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (SA_GROUP, f"{SA_GROUP}:{namespace}", AUTHENTICATED)


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """Kubernetes' `kid`: unpadded base64url of SHA-256 over the DER (PKIX) public key.

    Stable for a key, so clients and OIDC discovery can pick the right JWKS entry.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


class TokenIssuer:
    """Issues and verifies ServiceAccount JWTs (RS256), as kube-apiserver's TokenRequest.

    Pure: time is passed in (`now`, seconds since the epoch), so tests need no clock.
    """

    def __init__(
        self,
        private_key_pem: bytes | None = None,
        *,
        public_key_pem: bytes | None = None,
        issuer: str = DEFAULT_ISSUER,
        api_audiences: Iterable[str] = (),
    ) -> None:
        """Sign with `private_key_pem` (`sa.key`); a verify-only issuer needs just the
        public key. `api_audiences` are the audiences this API server accepts (default:
        the issuer, as kube-apiserver when `--api-audiences` is not set)."""
        self._private: rsa.RSAPrivateKey | None = None
        if private_key_pem is not None:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("ServiceAccount signing key must be RSA")
            self._private = key
            public: object = key.public_key()
        elif public_key_pem is not None:
            public = serialization.load_pem_public_key(public_key_pem)
        else:
            raise ValueError("TokenIssuer needs a private or a public key")
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError("ServiceAccount signing key must be RSA")
        self._public = public
        self.issuer = issuer
        self.api_audiences: tuple[str, ...] = tuple(api_audiences) or (issuer,)
        self.kid = key_id(public)

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set served at `/openid/v1/jwks`."""
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"use": "sig", "kid": self.kid, "alg": "RS256"})
        return {"keys": [jwk]}

    def issue(
        self,
        namespace: str,
        sa_name: str,
        sa_uid: str,
        audiences: Iterable[str] = (),
        expiration_seconds: int = 3600,
        bound: BoundObject | None = None,
        now: int = 0,
        *,
        jti: str | None = None,
    ) -> tuple[str, int]:
        """A signed token and its expiry (epoch seconds; the caller formats
        `status.expirationTimestamp`). Empty `audiences` means the API server's own."""
        if self._private is None:
            raise ValueError("this TokenIssuer has no private key and cannot sign")
        aud = list(audiences) or list(self.api_audiences)
        exp = now + expiration_seconds
        k8s: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": sa_name, "uid": sa_uid},
        }
        if bound is not None:
            ref = {"name": bound.name, "uid": bound.uid}
            if bound.kind == "Pod":
                k8s["pod"] = ref
                if bound.node_name:
                    k8s["node"] = {"name": bound.node_name, "uid": bound.node_uid}
            elif bound.kind == "Secret":
                k8s["secret"] = ref
            elif bound.kind == "Node":
                k8s["node"] = ref
            else:
                raise ValueError(f"cannot bind a token to kind {bound.kind!r}")
        claims = {
            "aud": aud,
            "exp": exp,
            "iat": now,
            "iss": self.issuer,
            "jti": jti or str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": service_account_username(namespace, sa_name),
        }
        token = jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})
        return token, exp

    def verify(self, token: str, now: int) -> UserInfo:
        """The ServiceAccount user a token names; raises `InvalidToken` otherwise.

        Checks signature, issuer, audience (any overlap with `api_audiences`), nbf/exp
        with `LEEWAY_SECONDS` of skew, and that `sub` agrees with the kubernetes.io
        claims. Whether the bound objects still exist is not checked here.
        """
        return self.verify_with_claims(token, now)[0]

    def verify_with_claims(self, token: str, now: int) -> tuple[UserInfo, ServiceAccountRef]:
        """`verify`, also returning the claims the binding-validity check needs."""
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                audience=list(self.api_audiences),
                issuer=self.issuer,
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iss", "sub", "aud"],
                },
            )
        except jwt.PyJWTError as e:
            raise InvalidToken(str(e)) from e
        # Time is checked here rather than by PyJWT so that `now` is injectable.
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now > exp + LEEWAY_SECONDS:
            raise InvalidToken("service account token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + LEEWAY_SECONDS < nbf:
            raise InvalidToken("service account token is not valid yet")
        ref = _sa_ref(claims)
        extra: dict[str, tuple[str, ...]] = {}
        if ref.pod_name is not None:
            extra[EXTRA_POD_NAME] = (ref.pod_name,)
            extra[EXTRA_POD_UID] = (ref.pod_uid or "",)
        node = claims["kubernetes.io"].get("node")
        if isinstance(node, dict) and node.get("name"):
            extra[EXTRA_NODE_NAME] = (str(node["name"]),)
            extra[EXTRA_NODE_UID] = (str(node.get("uid", "")),)
        if isinstance(claims.get("jti"), str):
            extra[EXTRA_CREDENTIAL_ID] = ("JTI=" + claims["jti"],)
        user = UserInfo(
            service_account_username(ref.namespace, ref.name),
            uid=ref.uid,
            groups=service_account_groups(ref.namespace),
            extra=extra,
        )
        return user, ref


def _sa_ref(claims: Mapping[str, Any]) -> ServiceAccountRef:
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, dict):
        raise InvalidToken("token lacks the kubernetes.io claims")
    ns = k8s.get("namespace")
    sa = k8s.get("serviceaccount")
    if not isinstance(ns, str) or not ns or not isinstance(sa, dict) or not sa.get("name"):
        raise InvalidToken("token lacks the service account claims")
    name = str(sa["name"])
    if claims.get("sub") != service_account_username(ns, name):
        raise InvalidToken("token subject does not match its service account claims")
    pod = k8s.get("pod")
    secret = k8s.get("secret")
    return ServiceAccountRef(
        namespace=ns,
        name=name,
        uid=str(sa.get("uid", "")),
        pod_name=str(pod["name"]) if isinstance(pod, dict) and "name" in pod else None,
        pod_uid=str(pod.get("uid", "")) if isinstance(pod, dict) and "name" in pod else None,
        secret_name=str(secret["name"]) if isinstance(secret, dict) and "name" in secret else None,
        secret_uid=(
            str(secret.get("uid", "")) if isinstance(secret, dict) and "name" in secret else None
        ),
    )


# --- the request authenticator ------------------------------------------------------

StillValid = Callable[[str, str, str, str | None, str | None], Awaitable[bool]]
"""`async def still_valid(namespace, sa_name, sa_uid, pod_name, pod_uid) -> bool`:
whether the ServiceAccount (and the pod, when the token is bound to one) still exists
with those uids. A token outliving its pod must stop working."""


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None.

    Like kube-apiserver: surrounding whitespace trimmed, scheme case-insensitive (the
    Python client sends `bearer`), the token is the second space-separated field.
    """
    if not authorization_header:
        return None
    parts = authorization_header.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


@dataclass(frozen=True, slots=True)
class Authentication:
    """The outcome of the synchronous checks: the user, and for ServiceAccount tokens
    the claims whose validity still needs the store."""

    user: UserInfo
    service_account: ServiceAccountRef | None = None


class Authenticator:
    """Client certificate, then bearer token (static, then ServiceAccount), then
    anonymous."""

    def __init__(
        self,
        *,
        static_tokens: Mapping[str, UserInfo] | None = None,
        token_issuer: TokenIssuer | None = None,
        still_valid: StillValid | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._static = dict(static_tokens or {})
        self._issuer = token_issuer
        self._still_valid = still_valid
        self._clock = clock

    def authenticate(
        self,
        peercert: Mapping[str, Any] | bytes | None,
        authorization_header: str | None,
        now: int | None = None,
    ) -> UserInfo | None:
        """The user, anonymous when no credentials were given, None when a credential
        was given but is not valid (the caller answers 401 `Unauthorized`)."""
        result = self.check(peercert, authorization_header, now)
        return result.user if result is not None else None

    def check(
        self,
        peercert: Mapping[str, Any] | bytes | None,
        authorization_header: str | None,
        now: int | None = None,
    ) -> Authentication | None:
        """Like `authenticate`, also returning the ServiceAccount claims to check."""
        user = user_from_peercert(peercert)
        if user is not None:
            return Authentication(user)
        token = bearer_token(authorization_header)
        if token is None:
            return Authentication(anonymous())
        static = self._static.get(token)
        if static is not None:
            return Authentication(static)
        if self._issuer is not None and token.count(".") == 2:
            when = now if now is not None else self._now()
            try:
                sa_user, ref = self._issuer.verify_with_claims(token, when)
            except InvalidToken:
                return None
            return Authentication(sa_user, ref)
        return None

    async def authenticate_request(
        self,
        peercert: Mapping[str, Any] | bytes | None,
        authorization_header: str | None,
        now: int | None = None,
    ) -> UserInfo | None:
        """`authenticate` plus the binding-validity callback for ServiceAccount tokens;
        what the API server's middleware calls."""
        result = self.check(peercert, authorization_header, now)
        if result is None:
            return None
        ref = result.service_account
        if ref is not None and self._still_valid is not None:
            ok = await self._still_valid(
                ref.namespace, ref.name, ref.uid, ref.pod_name, ref.pod_uid
            )
            if not ok:
                return None
        return result.user

    def _now(self) -> int:
        return int((self._clock or time.time)())


def _with_authenticated(groups: Iterable[str]) -> tuple[str, ...]:
    out = [g for g in groups if g]
    if AUTHENTICATED not in out:
        out.append(AUTHENTICATED)
    return tuple(out)
