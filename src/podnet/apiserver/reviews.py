"""Review kinds answered on create and never stored: access reviews, rules reviews,
token reviews and "who am I"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from podnet.api import errors, rbac
from podnet.api.resources import ResourceType
from podnet.apiserver.authn import UserInfo
from podnet.apiserver.handlers import USER_KEY, json_response
from podnet.apiserver.request import RequestInfo

if TYPE_CHECKING:
    from podnet.apiserver.app import ApiServer


def install(server: ApiServer) -> None:
    v = server.handler.virtual
    v["SelfSubjectAccessReview"] = lambda r, i, rt: access_review(server, r, i, rt, self_=True)
    v["SubjectAccessReview"] = lambda r, i, rt: access_review(server, r, i, rt, self_=False)
    v["LocalSubjectAccessReview"] = lambda r, i, rt: access_review(server, r, i, rt,
                                                                   self_=False)
    v["SelfSubjectRulesReview"] = lambda r, i, rt: rules_review(server, r, i, rt)
    v["TokenReview"] = lambda r, i, rt: token_review(server, r, i, rt)
    v["SelfSubjectReview"] = lambda r, i, rt: self_review(server, r, i, rt)


def _attrs(user: UserInfo, spec: dict[str, Any]) -> rbac.Attributes:
    ra = spec.get("resourceAttributes")
    if ra:
        return rbac.Attributes(
            user=user,
            verb=ra.get("verb", ""),
            namespace=ra.get("namespace", ""),
            api_group=ra.get("group", ""),
            resource=ra.get("resource", ""),
            subresource=ra.get("subresource", ""),
            name=ra.get("name", ""),
        )
    nra = spec.get("nonResourceAttributes") or {}
    return rbac.Attributes(user=user, verb=nra.get("verb", ""), path=nra.get("path", ""),
                           resource_request=False)


async def access_review(server: ApiServer, request: web.Request, info: RequestInfo,
                        rt: ResourceType, *, self_: bool) -> web.StreamResponse:
    body = await server.handler.read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request was in an unknown format")
    spec = body.get("spec") or {}
    if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
        raise errors.invalid(rt.kind, "", [errors.Cause(
            "FieldValueRequired", "spec.resourceAttributes",
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must "
            "be specified")], rt.group)
    if self_:
        user: UserInfo = request[USER_KEY]
    else:
        user = UserInfo(spec.get("user", ""), spec.get("uid", ""),
                        tuple(spec.get("groups") or ()))
        if rt.kind == "LocalSubjectAccessReview":
            ra = spec.get("resourceAttributes") or {}
            if ra.get("namespace") != info.namespace:
                raise errors.invalid(rt.kind, "", [errors.invalid_value(
                    "spec.resourceAttributes.namespace", ra.get("namespace", ""),
                    "must match metadata.namespace")], rt.group)
    decision = server.authorizer.check(_attrs(user, spec))
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    if not decision.allowed:
        status["denied"] = False
    out = {"kind": rt.kind, "apiVersion": rt.api_version,
           "metadata": {"creationTimestamp": None, **({"namespace": info.namespace}
                                                      if info.namespace else {})},
           "spec": spec, "status": status}
    return json_response(out, 201)


async def rules_review(server: ApiServer, request: web.Request, info: RequestInfo,
                       rt: ResourceType) -> web.StreamResponse:
    body = await server.handler.read_body(request)
    spec = (body or {}).get("spec") or {}
    ns = spec.get("namespace", "")
    if not ns:
        raise errors.invalid(rt.kind, "", [errors.required("spec.namespace")], rt.group)
    review = server.authorizer.rules_for(request[USER_KEY], ns)
    return json_response({"kind": rt.kind, "apiVersion": rt.api_version,
                          "metadata": {"creationTimestamp": None}, "spec": spec,
                          "status": review.to_status()}, 201)


async def token_review(server: ApiServer, request: web.Request, info: RequestInfo,
                       rt: ResourceType) -> web.StreamResponse:
    body = await server.handler.read_body(request)
    spec = (body or {}).get("spec") or {}
    tok = spec.get("token", "")
    user = await server.authenticator.authenticate_request(None, f"Bearer {tok}") if tok \
        else None
    status: dict[str, Any]
    if user is None or user.is_anonymous:
        status = {"authenticated": False, "user": {},
                  "error": "[invalid bearer token, token lookup failed]"}
    else:
        status = {"authenticated": True, "user": user.to_json(),
                  "audiences": list(spec.get("audiences") or [])}
    return json_response({"kind": rt.kind, "apiVersion": rt.api_version,
                          "metadata": {"creationTimestamp": None}, "spec": spec,
                          "status": status}, 201)


async def self_review(server: ApiServer, request: web.Request, info: RequestInfo,
                      rt: ResourceType) -> web.StreamResponse:
    user: UserInfo = request[USER_KEY]
    return json_response({"kind": rt.kind, "apiVersion": rt.api_version,
                          "metadata": {"creationTimestamp": None},
                          "status": {"userInfo": user.to_json()}}, 201)
