"""Subresources with their own shapes: binding, scale, ServiceAccount token, eviction,
and the node-proxied pod streams (log, exec, attach, port-forward).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from podnet.api import errors
from podnet.api import patch as api_patch
from podnet.api.resources import ResourceType
from podnet.api.tables import label_selector_string
from podnet.apiserver import negotiate
from podnet.apiserver.handlers import json_response, read_all, write_options
from podnet.apiserver.request import RequestInfo
from podnet.apiserver.storage import DeleteOptions, WriteOptions
from podnet.util.clock import rfc3339

if TYPE_CHECKING:
    from podnet.apiserver.app import ApiServer


def install(server: ApiServer) -> None:
    h = server.handler.subresources
    h["pods/binding"] = lambda r, i, rt: binding(server, r, i, rt)
    h["pods/eviction"] = lambda r, i, rt: eviction(server, r, i, rt)
    h["deployments/scale"] = lambda r, i, rt: scale(server, r, i, rt)
    h["replicasets/scale"] = lambda r, i, rt: scale(server, r, i, rt)
    h["serviceaccounts/token"] = lambda r, i, rt: token(server, r, i, rt)
    for sub in ("log", "exec", "attach", "portforward"):
        h[f"pods/{sub}"] = lambda r, i, rt: pod_stream(server, r, i, rt)


async def binding(server: ApiServer, request: web.Request, info: RequestInfo,
                  rt: ResourceType) -> web.StreamResponse:
    """POST pods/<name>/binding: assign the pod to a node, once."""
    if request.method != "POST":
        raise errors.method_not_allowed(
            "the server does not allow this method on the requested resource")
    body = await server.handler.read_body(request)
    target = (body or {}).get("target") or {}
    node = target.get("name")
    if not node:
        raise errors.invalid("Binding", info.name, [errors.required("target.name")])
    now = rfc3339(server.clock.now())

    def bind(pod: dict[str, Any]) -> dict[str, Any]:
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods/binding", info.name, why="pod is being deleted, "
                                  "cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods/binding", info.name, why=f'pod {info.name} is already '
                                  f'assigned to node "{spec["nodeName"]}"')
        spec["nodeName"] = node
        conds = [c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": now})
        pod.setdefault("status", {})["conditions"] = conds
        return pod

    pods = server.registry.get("", "v1", "pods")
    assert pods is not None
    # Binding writes spec and status together, as the apiserver's binding REST does.
    await server.storage.modify(pods, info.namespace, info.name, bind,
                                WriteOptions(field_manager="podnet-scheduler",
                                             subresource="binding"))
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Success", "code": 201}, 201)


async def eviction(server: ApiServer, request: web.Request, info: RequestInfo,
                   rt: ResourceType) -> web.StreamResponse:
    """POST pods/<name>/eviction: delete the pod (no PodDisruptionBudgets yet)."""
    body = await server.handler.read_body(request)
    opts = (body or {}).get("deleteOptions") or {}
    grace = opts.get("gracePeriodSeconds")
    await server.storage.delete(rt, info.namespace, info.name,
                                DeleteOptions(grace_period_seconds=grace))
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Success", "code": 201}, 201)


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
        "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0)),
                   "selector": label_selector_string(
                       (obj.get("spec") or {}).get("selector"))},
    }


async def scale(server: ApiServer, request: web.Request, info: RequestInfo,
                rt: ResourceType) -> web.StreamResponse:
    """GET/PUT/PATCH <workload>/<name>/scale (autoscaling/v1 Scale)."""
    if request.method == "GET":
        obj = await server.storage.get(rt, info.namespace, info.name)
        return json_response(_scale_of(obj))
    if request.method not in ("PUT", "PATCH"):
        raise errors.method_not_allowed(
            "the server does not allow this method on the requested resource")
    raw = await read_all(request)
    ct = request.headers.get("Content-Type", "application/json")
    ptype = negotiate.PATCH_TYPES.get(negotiate.media_type(ct)) if request.method == "PATCH" \
        else None
    body = negotiate.decode_body(raw, "application/yaml" if ptype == "apply" else
                                 "application/json")
    opts = write_options(request.query)

    def change(live: dict[str, Any]) -> dict[str, Any]:
        current = _scale_of(live)
        if ptype == "json":
            wanted = api_patch.json_patch(current, body)
        elif ptype in ("merge", "strategic", "apply"):
            wanted = api_patch.json_merge_patch(current, body)
        else:
            wanted = body
        rv = (wanted.get("metadata") or {}).get("resourceVersion")
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", info.name, [errors.invalid_value(
                "spec.replicas", replicas, "must be greater than or equal to 0")],
                "autoscaling")
        live.setdefault("spec", {})["replicas"] = replicas
        live["metadata"]["resourceVersion"] = rv or live["metadata"]["resourceVersion"]
        return live

    res = await server.storage.modify(rt, info.namespace, info.name, change,
                                      WriteOptions(dry_run=opts.dry_run,
                                                   field_manager=opts.field_manager))
    return json_response(_scale_of(res.obj))


async def token(server: ApiServer, request: web.Request, info: RequestInfo,
                rt: ResourceType) -> web.StreamResponse:
    """POST serviceaccounts/<name>/token: a TokenRequest answered with a signed JWT."""
    from podnet.apiserver.authn import BoundObject

    if request.method != "POST":
        raise errors.method_not_allowed(
            "the server does not allow this method on the requested resource")
    if server.token_issuer is None:
        raise errors.service_unavailable("ServiceAccount token signing is not configured")
    body = await server.handler.read_body(request) or {}
    spec = body.get("spec") or {}
    sa = await server.storage.get(rt, info.namespace, info.name)
    expiration = int(spec.get("expirationSeconds") or 3600)
    if expiration < 600:
        raise errors.invalid("TokenRequest", info.name, [errors.invalid_value(
            "spec.expirationSeconds", expiration,
            "may not specify a duration less than 10 minutes")], "authentication.k8s.io")
    bound = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind = ref.get("kind")
        if kind not in ("Pod", "Secret", "Node"):
            raise errors.invalid("TokenRequest", info.name, [errors.not_supported(
                "spec.boundObjectRef.kind", kind, ["Pod", "Node", "Secret"])],
                "authentication.k8s.io")
        bound_rt = server.registry.get("", "v1", kind.lower() + "s")
        assert bound_rt is not None
        target = await server.storage.get(
            bound_rt, info.namespace if bound_rt.namespaced else None, ref.get("name", ""))
        uid = target["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise errors.conflict(bound_rt.plural, ref.get("name", ""), why=(
                f"the UID in the bound object reference ({ref['uid']}) does not match the "
                f"UID in record. The object might have been deleted and then recreated"))
        bound = BoundObject(kind=kind, name=ref.get("name", ""), uid=uid)
    audiences = list(spec.get("audiences") or [])
    tok, exp = server.token_issuer.issue(
        namespace=info.namespace, sa_name=info.name, sa_uid=sa["metadata"]["uid"],
        audiences=audiences, expiration_seconds=expiration, bound=bound,
        now=int(server.clock.now().timestamp()))
    out_spec = dict(spec)
    out_spec["audiences"] = audiences or list(server.token_issuer.api_audiences)
    out_spec["expirationSeconds"] = expiration
    return json_response({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": info.name, "namespace": info.namespace,
                     "creationTimestamp": None},
        "spec": out_spec,
        "status": {"token": tok, "expirationTimestamp": rfc3339(
            datetime.fromtimestamp(exp, UTC))},
    }, 201)


async def pod_stream(server: ApiServer, request: web.Request, info: RequestInfo,
                     rt: ResourceType) -> web.StreamResponse:
    """log / exec / attach / portforward are served by the pod's node agent.

    The API server finds the pod's node and hands the request over; with no node agent
    serving that node, the answer says so, as the kubelet-less apiserver would.
    """
    pod = await server.storage.get(rt, info.namespace, info.name)
    node_proxy = server.node_proxy
    node = (pod.get("spec") or {}).get("nodeName")
    if node_proxy is not None and node:
        result: web.StreamResponse = await node_proxy(request, info, pod)
        return result
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    container = request.query.get("container") or (containers[0] if containers else "")
    if not node:
        raise errors.bad_request(
            f'container "{container}" in pod "{info.name}" is waiting to start: '
            "ContainerCreating" if info.subresource == "log" else
            f'pod {info.name} is not scheduled to any node yet')
    raise errors.service_unavailable(
        f'no node agent is serving node "{node}" for pod "{info.name}"')
