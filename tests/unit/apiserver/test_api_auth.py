"""Authentication and RBAC authorization over HTTP, the review kinds, and ServiceAccount
tokens issued by the TokenRequest subresource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from podnet.apiserver.authn import TokenIssuer
from podnet.testing.apiserver import (
    ADMIN_TOKEN,
    USER_TOKEN,
    InProcessApi,
    running_api,
)
from tests.unit.apiserver.support import CONFIGMAPS, PODS, configmap, created, status_of

SECRETS = "/api/v1/namespaces/default/secrets"
ROLEBINDINGS = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@pytest.fixture
async def api() -> AsyncIterator[InProcessApi]:
    async with running_api() as a:
        yield a


def view_binding(user: str = "jane") -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{user}-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": user}]}


async def test_user_without_rbac_is_forbidden(api: InProcessApi) -> None:
    code, body, _ = await api.get(PODS, token=USER_TOKEN)
    assert code == 403
    assert status_of(body) == (
        "Forbidden", 'pods is forbidden: User "jane" cannot list resource "pods" in API group '
                     '"" in the namespace "default"')
    assert body["details"] == {"kind": "pods"}


async def test_forbidden_get_names_the_object(api: InProcessApi) -> None:
    code, body, _ = await api.get(f"{SECRETS}/s", token=USER_TOKEN)
    assert code == 403
    assert status_of(body) == (
        "Forbidden", 'secrets "s" is forbidden: User "jane" cannot get resource "secrets" in '
                     'API group "" in the namespace "default"')
    assert body["details"] == {"name": "s", "kind": "secrets"}


async def test_forbidden_cluster_scope_and_group(api: InProcessApi) -> None:
    code, body, _ = await api.get("/apis/apps/v1/deployments", token=USER_TOKEN)
    assert code == 403
    assert status_of(body)[1] == (
        'deployments.apps is forbidden: User "jane" cannot list resource "deployments" in '
        'API group "apps" at the cluster scope')


async def test_view_binding_grants_reads_but_not_secrets(api: InProcessApi) -> None:
    await created(api, CONFIGMAPS, configmap("c"))
    await created(api, ROLEBINDINGS, view_binding())
    code, body, _ = await api.get(PODS, token=USER_TOKEN)
    assert code == 200, body
    code, body, _ = await api.get(f"{CONFIGMAPS}/c", token=USER_TOKEN)
    assert code == 200
    code, body, _ = await api.get(f"{SECRETS}/s", token=USER_TOKEN)
    assert code == 403
    code, body, _ = await api.post(CONFIGMAPS, configmap("d"), token=USER_TOKEN)
    assert code == 403
    assert status_of(body)[1] == (
        'configmaps is forbidden: User "jane" cannot create resource "configmaps" in API '
        'group "" in the namespace "default"')
    # Only in default.
    code, _, _ = await api.get("/api/v1/namespaces/kube-system/pods", token=USER_TOKEN)
    assert code == 403
    # Removing the binding takes the access away again.
    code, _, _ = await api.delete(f"{ROLEBINDINGS}/jane-view")
    assert code == 200
    code, _, _ = await api.get(PODS, token=USER_TOKEN)
    assert code == 403


async def test_anonymous(api: InProcessApi) -> None:
    code, body, _ = await api.get("/version", token=None)
    assert code == 200 and body["minor"] == "32"
    code, body, _ = await api.get("/healthz", token=None)
    assert code == 200 and body == "ok"
    code, body, _ = await api.get("/api/v1/pods", token=None)
    assert code == 403
    assert status_of(body)[1] == (
        'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API '
        'group "" at the cluster scope')


async def test_bad_token_is_unauthorized(api: InProcessApi) -> None:
    for path in ("/api/v1/pods", "/version"):
        code, body, _ = await api.get(path, token="wrong")
        assert code == 401
        assert status_of(body) == ("Unauthorized", "Unauthorized")


async def test_self_subject_access_review(api: InProcessApi) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "default", "verb": "list",
                                              "resource": "pods"}}}
    code, body, _ = await api.post(SSAR, review, token=USER_TOKEN)
    assert code == 201, body
    assert body["kind"] == "SelfSubjectAccessReview"
    assert body["status"]["allowed"] is False
    await created(api, ROLEBINDINGS, view_binding())
    code, body, _ = await api.post(SSAR, review, token=USER_TOKEN)
    assert code == 201
    assert body["status"]["allowed"] is True
    assert "RoleBinding" in body["status"]["reason"]
    code, body, _ = await api.post(SSAR, review)
    assert body["status"]["allowed"] is True  # the admin


async def test_self_subject_access_review_needs_attributes(api: InProcessApi) -> None:
    code, body, _ = await api.post(SSAR, {"apiVersion": "authorization.k8s.io/v1",
                                          "kind": "SelfSubjectAccessReview", "spec": {}})
    assert code == 422
    assert body["reason"] == "Invalid"


async def test_self_subject_rules_review(api: InProcessApi) -> None:
    await created(api, ROLEBINDINGS, view_binding())
    code, body, _ = await api.post(
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
         "spec": {"namespace": "default"}}, token=USER_TOKEN)
    assert code == 201, body
    rules = body["status"]["resourceRules"]
    assert any("pods" in r.get("resources", []) and "list" in r["verbs"] for r in rules)
    assert not any("secrets" in r.get("resources", []) for r in rules)
    assert body["status"]["incomplete"] is False
    # Every authenticated user may create reviews (system:basic-user).
    assert any("selfsubjectaccessreviews" in r.get("resources", []) for r in rules)


async def test_token_review(api: InProcessApi) -> None:
    path = "/apis/authentication.k8s.io/v1/tokenreviews"
    code, body, _ = await api.post(path, {"apiVersion": "authentication.k8s.io/v1",
                                          "kind": "TokenReview",
                                          "spec": {"token": USER_TOKEN}})
    assert code == 201, body
    assert body["status"]["authenticated"] is True
    assert body["status"]["user"]["username"] == "jane"
    assert "system:authenticated" in body["status"]["user"]["groups"]
    code, body, _ = await api.post(path, {"apiVersion": "authentication.k8s.io/v1",
                                          "kind": "TokenReview", "spec": {"token": "nope"}})
    assert code == 201
    assert body["status"]["authenticated"] is False


async def test_token_review_needs_permission(api: InProcessApi) -> None:
    code, _, _ = await api.post("/apis/authentication.k8s.io/v1/tokenreviews",
                                   {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "TokenReview", "spec": {"token": ADMIN_TOKEN}},
                                   token=USER_TOKEN)
    assert code == 403


async def test_self_subject_review(api: InProcessApi) -> None:
    code, body, _ = await api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                   {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "SelfSubjectReview"}, token=USER_TOKEN)
    assert code == 201, body
    assert body["status"]["userInfo"]["username"] == "jane"


# ---- ServiceAccount tokens ---------------------------------------------------------------


def fresh_issuer() -> TokenIssuer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return TokenIssuer(pem)


async def test_service_account_token_without_issuer(api: InProcessApi) -> None:
    await created(api, "/api/v1/namespaces/default/serviceaccounts",
                  {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}})
    code, body, _ = await api.post("/api/v1/namespaces/default/serviceaccounts/bot/token",
                                   {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "TokenRequest", "spec": {}})
    assert code == 503
    assert body["reason"] == "ServiceUnavailable"


async def test_service_account_token_authenticates() -> None:
    async with running_api(token_issuer=fresh_issuer()) as api:
        await created(api, "/api/v1/namespaces/default/serviceaccounts",
                      {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "bot"}})
        code, body, _ = await api.post(
            "/api/v1/namespaces/default/serviceaccounts/bot/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": 3600}})
        assert code == 201, body
        assert body["kind"] == "TokenRequest"
        token = body["status"]["token"]
        assert body["status"]["expirationTimestamp"]
        code, body, _ = await api.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            token=token)
        assert code == 201, body
        info = body["status"]["userInfo"]
        assert info["username"] == "system:serviceaccount:default:bot"
        assert set(info["groups"]) >= {"system:serviceaccounts",
                                       "system:serviceaccounts:default",
                                       "system:authenticated"}
        code, body, _ = await api.get(PODS, token=token)
        assert code == 403
        assert status_of(body)[1] == (
            'pods is forbidden: User "system:serviceaccount:default:bot" cannot list '
            'resource "pods" in API group "" in the namespace "default"')
        # A tampered token is refused.
        code, body, _ = await api.get("/version", token=token[:-4] + "AAAA")
        assert code == 401


async def test_service_account_token_request_validation() -> None:
    async with running_api(token_issuer=fresh_issuer()) as api:
        path = "/api/v1/namespaces/default/serviceaccounts/bot/token"
        req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"expirationSeconds": 60}}
        code, body, _ = await api.post(path, req)
        assert code == 404
        assert status_of(body) == ("NotFound", 'serviceaccounts "bot" not found')
        await created(api, "/api/v1/namespaces/default/serviceaccounts",
                      {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "bot"}})
        code, body, _ = await api.post(path, req)
        assert code == 422
        assert status_of(body)[1] == (
            'TokenRequest.authentication.k8s.io "bot" is invalid: spec.expirationSeconds: '
            "Invalid value: 60: may not specify a duration less than 10 minutes")
