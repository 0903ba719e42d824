"""Recording core/v1 Events, as client-go's EventRecorder does.

An event names the object it is about (involvedObject), a reason and a message in
Kubernetes' own words ("Scaled up replica set web-7d4b9c8f6 from 0 to 3"). Repeats of
the same (object, type, reason, message) are aggregated into one Event whose count and
lastTimestamp go up, so `kubectl describe` shows `x3 over 2m` instead of three lines.

Recording never fails the caller: events are best effort in Kubernetes too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from podnet.api.errors import StatusError
from podnet.api.resources import ResourceType
from podnet.client.rest import ApiClient
from podnet.controllers.common import JSON, Clock, meta, rfc3339

log = logging.getLogger(__name__)

EVENTS = ResourceType("", "v1", "Event", "events", True)
EventType = Literal["Normal", "Warning"]


def involved_object(obj: Mapping[str, Any]) -> JSON:
    m = meta(obj)
    ref: JSON = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", "")}
    if m.get("namespace"):
        ref["namespace"] = m["namespace"]
    ref["name"] = m.get("name", "")
    if m.get("uid"):
        ref["uid"] = m["uid"]
    if m.get("resourceVersion"):
        ref["resourceVersion"] = m["resourceVersion"]
    return ref


def build_event(
    obj: Mapping[str, Any],
    etype: EventType,
    reason: str,
    message: str,
    *,
    component: str,
    host: str = "",
    now: datetime,
    nanos: int | None = None,
) -> JSON:
    """A new core/v1 Event, named `<object>.<hex nanoseconds>` like client-go names it.

    Cluster-scoped objects' events live in the `default` namespace, as in Kubernetes.
    """
    m = meta(obj)
    namespace = m.get("namespace") or "default"
    stamp = rfc3339(now)
    source: JSON = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{m.get('name', '')}.{nanos or int(now.timestamp() * 1e9):x}",
            "namespace": namespace,
        },
        "involvedObject": involved_object(obj),
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": etype,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host,
    }


@dataclass
class _Seen:
    namespace: str
    name: str
    count: int


class EventRecorder:
    """Writes Events for one component; `event()` is awaited but never raises."""

    def __init__(
        self,
        client: ApiClient,
        component: str,
        clock: Clock,
        *,
        host: str = "",
        max_remembered: int = 4096,
    ) -> None:
        self.client = client
        self.component = component
        self.clock = clock
        self.host = host
        self._seen: dict[tuple[str, ...], _Seen] = {}
        self._max = max_remembered
        self._last_nanos = 0

    async def event(
        self, obj: Mapping[str, Any], etype: EventType, reason: str, message: str
    ) -> None:
        now = self.clock.now()
        m = meta(obj)
        key = (
            str(obj.get("kind", "")), str(m.get("namespace", "")), str(m.get("name", "")),
            str(m.get("uid", "")), etype, reason, message,
        )
        try:
            seen = self._seen.get(key)
            if seen is not None:
                try:
                    await self.client.patch(
                        EVENTS, seen.name,
                        {"count": seen.count + 1, "lastTimestamp": rfc3339(now)},
                        seen.namespace, patch_type="merge",
                    )
                    seen.count += 1
                    return
                except StatusError as err:
                    if err.code != 404:
                        raise
                    # The event expired (TTL) or was deleted: start a new one.
            # Names come from the time in nanoseconds; two events in the same tick (or
            # under a frozen test clock) still need distinct names.
            nanos = max(int(now.timestamp() * 1e9), self._last_nanos + 1)
            self._last_nanos = nanos
            body = build_event(obj, etype, reason, message, component=self.component,
                               host=self.host, now=now, nanos=nanos)
            created = await self.client.create(EVENTS, body)
            if len(self._seen) >= self._max:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = _Seen(
                str(body["metadata"]["namespace"]), str(meta(created).get("name") or
                                                        body["metadata"]["name"]), 1
            )
        except Exception as err:
            log.info("component=%s event=record-failed reason=%s error=%r",
                     self.component, reason, err)

    async def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        await self.event(obj, "Normal", reason, message)

    async def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        await self.event(obj, "Warning", reason, message)
