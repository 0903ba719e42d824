"""The cluster DNS record table: Services, EndpointSlices and Pods → resource records.

Pure: no I/O, no clock. Follows the Kubernetes DNS-Based Service Discovery specification,
schema 1.1.0 (https://github.com/kubernetes/dns/blob/master/docs/specification.md), and
CoreDNS's `kubernetes` plugin where the specification leaves a choice:

- a headless Service with no ready endpoint answers NXDOMAIN (spec 2.4.1, and CoreDNS);
- an endpoint without `hostname` is named by its dashed IP (`10-244-0-7`), as CoreDNS does
  with `endpoint_pod_names` off; the name is stable for as long as the address is;
- SRV for headless Services use the EndpointSlice port numbers (the pods' ports), as
  CoreDNS does; ClusterIP SRV use the Service port;
- pod records `a-b-c-d.<ns>.pod.<zone>` follow the spec's "any values" rule by default
  (CoreDNS `pods insecure`, kubeadm's default); `pods="verified"` answers only for pods
  that exist with that IP in that namespace;
- an owner name with no record of the asked type, or an empty non-terminal
  (`<ns>.svc.<zone>` while the namespace has Services, `_tcp.<svc>…`), is NODATA;
- reverse names with no PTR here are not ours (`lookup` returns None: forward them), like
  CoreDNS's `fallthrough in-addr.arpa ip6.arpa`.

Change tracking: every mutation bumps `version`, records the owner names whose answers
may have changed, and calls `on_change` (if set); `take_dirty()` hands the names to the one
consumer (the server's encoder, which pushes fresh answers to the answering process).

Memory: at 10,000 Services + 10,000 pods this table is the feeder's whole state (the
answering process holds only encoded answers), so records are kept flat: per owner one
list `[type, rdata, type, rdata, …]` in which a record contributed by two sources appears
twice (that is its reference count), instead of nested dicts per owner and type.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SCHEMA_VERSION = "1.1.0"
DEFAULT_ZONE = "cluster.local"
DEFAULT_TTL = 5

# Resource record types and response codes used here (RFC 1035, 2782, 3596, 6891).
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", TXT: "TXT",
              AAAA: "AAAA", SRV: "SRV", OPT: "OPT", ANY: "ANY"}
TYPE_CODES = {v: k for k, v in TYPE_NAMES.items()}
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL",
               NXDOMAIN: "NXDOMAIN", NOTIMP: "NOTIMP", REFUSED: "REFUSED"}

_MAX_CHAIN = 8  # CNAME hops followed inside the zone before giving up (loops, long chains)


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


# A/AAAA: the address text; CNAME/PTR/NS: a name; TXT: the string.
Rdata = str | Srv | Soa


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # absolute, lower case, trailing dot
    rtype: int
    ttl: int
    rdata: Rdata

    def to_text(self) -> str:
        """The record as a zone-file line, in dnspython's presentation format."""
        d = self.rdata
        if isinstance(d, Srv):
            data = f"{d.priority} {d.weight} {d.port} {d.target}"
        elif isinstance(d, Soa):
            data = (f"{d.mname} {d.rname} {d.serial} {d.refresh} {d.retry} {d.expire} "
                    f"{d.minimum}")
        elif self.rtype == TXT:
            data = '"' + d.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            data = d
        return f"{self.name} {self.ttl} IN {TYPE_NAMES.get(self.rtype, str(self.rtype))} {data}"


@dataclass(frozen=True, slots=True)
class Answer:
    rcode: int
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    # The chain ends in a name outside the cluster: the server resolves `chase` upstream
    # (same qtype) and appends what it gets, as CoreDNS does for ExternalName targets.
    chase: str | None = None


# --- views: raw API objects are read once, here -------------------------------------

@dataclass(frozen=True, slots=True)
class Port:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class ServiceView:
    namespace: str
    name: str
    kind: Literal["ClusterIP", "Headless", "ExternalName"]
    cluster_ips: tuple[str, ...]
    external_name: str
    ports: tuple[Port, ...]
    publish_not_ready: bool

    @classmethod
    def from_service(cls, svc: Mapping[str, Any]) -> ServiceView:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        ips = tuple(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP")
                                               else []))
        kind: Literal["ClusterIP", "Headless", "ExternalName"]
        if spec.get("type") == "ExternalName":
            kind = "ExternalName"
        elif "None" in ips:
            kind = "Headless"
        else:
            kind = "ClusterIP"
        ports = tuple(Port(str(p.get("name") or ""), str(p.get("protocol") or "TCP"),
                           int(p.get("port") or 0)) for p in spec.get("ports") or ())
        return cls(namespace=str(meta.get("namespace") or "default"),
                   name=str(meta.get("name") or ""), kind=kind,
                   cluster_ips=tuple(ip for ip in ips if ip and ip != "None"),
                   external_name=_absolute(str(spec.get("externalName") or "")),
                   ports=ports,
                   publish_not_ready=bool(spec.get("publishNotReadyAddresses")))


@dataclass(frozen=True, slots=True)
class EndpointView:
    addresses: tuple[str, ...]
    hostname: str  # "" when the endpoint has none
    ready: bool


@dataclass(frozen=True, slots=True)
class SliceView:
    namespace: str
    name: str
    service: str
    endpoints: tuple[EndpointView, ...]
    ports: tuple[Port, ...]

    @classmethod
    def from_slice(cls, es: Mapping[str, Any]) -> SliceView:
        meta = es.get("metadata") or {}
        labels = meta.get("labels") or {}
        eps = []
        for ep in es.get("endpoints") or ():
            cond = ep.get("conditions") or {}
            # EndpointSlice API: a nil `ready` is to be read as ready.
            ready = cond.get("ready")
            eps.append(EndpointView(tuple(str(a) for a in ep.get("addresses") or ()),
                                    str(ep.get("hostname") or "").lower(),
                                    True if ready is None else bool(ready)))
        ports = tuple(Port(str(p.get("name") or ""), str(p.get("protocol") or "TCP"),
                           int(p.get("port") or 0)) for p in es.get("ports") or ())
        return cls(namespace=str(meta.get("namespace") or "default"),
                   name=str(meta.get("name") or ""),
                   service=str(labels.get("kubernetes.io/service-name") or ""),
                   endpoints=tuple(eps), ports=ports)


@dataclass(frozen=True, slots=True)
class PodView:
    namespace: str
    name: str
    ips: tuple[str, ...]
    hostname: str
    subdomain: str
    ready: bool

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any]) -> PodView:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        ips = tuple(str(p.get("ip")) for p in status.get("podIPs") or () if p.get("ip"))
        if not ips and status.get("podIP"):
            ips = (str(status["podIP"]),)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or ())
        return cls(namespace=str(meta.get("namespace") or "default"),
                   name=str(meta.get("name") or ""), ips=ips,
                   hostname=str(spec.get("hostname") or "").lower(),
                   subdomain=str(spec.get("subdomain") or "").lower(), ready=ready)


def _absolute(name: str) -> str:
    name = name.strip().lower()
    if not name:
        return ""
    return name if name.endswith(".") else name + "."


def dashed(ip: str) -> str:
    """`10.244.0.7` → `10-244-0-7`; `fd00::1` → `fd00--1` (CoreDNS's generated names)."""
    return ip.replace(".", "-").replace(":", "-")


def _addr_type(ip: str) -> int:
    return AAAA if ":" in ip else A


_Key = tuple[str, str]  # (namespace, name)
_Rec = tuple[str, int, Rdata]  # (owner, type, rdata), ttl added on answer


class Zone:
    """The record table for one cluster zone, updated object by object."""

    def __init__(self, zone: str = DEFAULT_ZONE, ttl: int = DEFAULT_TTL, *, serial: int = 1,
                 pods: Literal["insecure", "verified", "disabled"] = "insecure",
                 dns_ip: str | None = None) -> None:
        self.origin = _absolute(zone)
        self.ttl = ttl
        self.pods_mode = pods
        self.version = 0
        # Called after every mutation (the server pushes the changed answers from here).
        self.on_change: Callable[[], None] | None = None
        # False until the first full list of every input has been applied: until then the
        # server answers SERVFAIL for our names, never a premature NXDOMAIN.
        self.synced = False
        self._services: dict[_Key, ServiceView] = {}
        self._slices: dict[_Key, SliceView] = {}
        self._slices_of: dict[_Key, set[str]] = {}  # service → its slice names
        self._pods: dict[_Key, PodView] = {}
        self._pods_in_subdomain: dict[_Key, set[str]] = {}  # (ns, subdomain) → pod names
        # owner → [type, rdata, type, rdata, …] in insertion order; a duplicate pair is a
        # second reference (see the module docstring).
        self._rr: dict[str, list[int | Rdata]] = {}
        self._ents: dict[str, int] = {}  # in-zone ancestors of owners, reference counted
        self._contrib: dict[tuple[str, str, str], tuple[_Rec, ...]] = {}
        self._cname_into: dict[str, set[str]] = {}  # in-zone CNAME target → owners
        self._dirty: set[str] = set()
        self._soa = Record(self.origin, SOA, ttl, Soa(
            "ns.dns." + self.origin, "hostmaster." + self.origin, serial, 7200, 1800, 86400,
            ttl))
        static: list[_Rec] = [(self.origin, SOA, self._soa.rdata),
                              (self.origin, NS, "ns.dns." + self.origin),
                              ("dns-version." + self.origin, TXT, SCHEMA_VERSION)]
        if dns_ip:
            static.append(("ns.dns." + self.origin, _addr_type(dns_ip), dns_ip))
        self._set_contrib(("static", "", ""), static)
        for ent in ("svc." + self.origin, "pod." + self.origin):
            self._ents[ent] = self._ents.get(ent, 0) + 1
        self._dirty.clear()

    # --- inputs ------------------------------------------------------------------------

    def upsert_service(self, svc: Mapping[str, Any]) -> None:
        view = ServiceView.from_service(svc)
        key = (view.namespace, view.name)
        if self._services.get(key) == view:
            return
        self._services[key] = view
        self._rebuild_service(key)
        self._rebuild_pods_of_subdomain(key)
        self._changed()

    def delete_service(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if self._services.pop(key, None) is None:
            return
        self._rebuild_service(key)
        self._rebuild_pods_of_subdomain(key)
        self._changed()

    def upsert_slice(self, es: Mapping[str, Any]) -> None:
        view = SliceView.from_slice(es)
        key = (view.namespace, view.name)
        old = self._slices.get(key)
        if old == view:
            return
        self._slices[key] = view
        if old is not None and old.service != view.service:
            self._slices_of.get((old.namespace, old.service), set()).discard(view.name)
            self._rebuild_service((old.namespace, old.service))
        self._slices_of.setdefault((view.namespace, view.service), set()).add(view.name)
        self._rebuild_service((view.namespace, view.service))
        self._changed()

    def delete_slice(self, namespace: str, name: str) -> None:
        old = self._slices.pop((namespace, name), None)
        if old is None:
            return
        skey = (namespace, old.service)
        names = self._slices_of.get(skey)
        if names is not None:
            names.discard(name)
            if not names:
                del self._slices_of[skey]
        self._rebuild_service(skey)
        self._changed()

    def upsert_pod(self, pod: Mapping[str, Any]) -> None:
        view = PodView.from_pod(pod)
        key = (view.namespace, view.name)
        old = self._pods.get(key)
        if old == view:
            return
        if old is not None and old.subdomain:
            self._pods_in_subdomain.get((old.namespace, old.subdomain), set()).discard(old.name)
        self._pods[key] = view
        if view.subdomain:
            self._pods_in_subdomain.setdefault((view.namespace, view.subdomain),
                                               set()).add(view.name)
        self._rebuild_pod(key)
        self._changed()

    def delete_pod(self, namespace: str, name: str) -> None:
        old = self._pods.pop((namespace, name), None)
        if old is None:
            return
        if old.subdomain:
            members = self._pods_in_subdomain.get((namespace, old.subdomain))
            if members is not None:
                members.discard(name)
                if not members:
                    del self._pods_in_subdomain[(namespace, old.subdomain)]
        self._rebuild_pod((namespace, name))
        self._changed()

    def replace_all(self, services: Iterable[Mapping[str, Any]],
                    slices: Iterable[Mapping[str, Any]],
                    pods: Iterable[Mapping[str, Any]]) -> None:
        """Make the table match a fresh list (after a re-list), touching only what changed."""
        svcs, ess, ps = list(services), list(slices), list(pods)
        keep_s = {(ServiceView.from_service(s).namespace, ServiceView.from_service(s).name)
                  for s in svcs}
        keep_e = {(SliceView.from_slice(e).namespace, SliceView.from_slice(e).name) for e in ess}
        keep_p = {(PodView.from_pod(p).namespace, PodView.from_pod(p).name) for p in ps}
        for k in [k for k in self._services if k not in keep_s]:
            self.delete_service(*k)
        for k in [k for k in self._slices if k not in keep_e]:
            self.delete_slice(*k)
        for k in [k for k in self._pods if k not in keep_p]:
            self.delete_pod(*k)
        for s in svcs:
            self.upsert_service(s)
        for e in ess:
            self.upsert_slice(e)
        for p in ps:
            self.upsert_pod(p)

    def mark_synced(self) -> None:
        self.synced = True
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        if self.on_change is not None:
            self.on_change()

    # --- outputs -----------------------------------------------------------------------

    def take_dirty(self) -> set[str]:
        """Owner names whose answers may have changed since the last call (one consumer)."""
        dirty = self._dirty
        self._dirty = set()
        # Answers that chase a CNAME into a changed name change with it.
        todo = [n for n in dirty if n in self._cname_into]
        while todo:
            for owner in self._cname_into.get(todo.pop(), ()):
                if owner not in dirty:
                    dirty.add(owner)
                    todo.append(owner)
        return dirty

    def names(self) -> Iterator[str]:
        """Every owner name with records (for pre-encoding them all)."""
        return iter(list(self._rr))

    def types_at(self, name: str) -> tuple[int, ...]:
        """The record types present at an owner name (empty if none)."""
        return tuple(self._rrsets(name))

    def is_ent(self, name: str) -> bool:
        """An empty non-terminal: no records, but names below it have some (NODATA)."""
        return name not in self._rr and name in self._ents

    def ent_names(self) -> Iterator[str]:
        return iter(list(self._ents))

    def _rrsets(self, name: str) -> dict[int, dict[Rdata, None]]:
        """type → rdata (deduplicated, first-contributed first) at one owner name."""
        flat = self._rr.get(name)
        out: dict[int, dict[Rdata, None]] = {}
        if flat:
            for i in range(0, len(flat), 2):
                rtype = flat[i]
                assert isinstance(rtype, int)
                out.setdefault(rtype, {})[flat[i + 1]] = None  # type: ignore[index]
        return out

    def in_zone(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    def pod_for_ip(self, ip: str) -> tuple[str, str] | None:
        """(namespace, name) of the pod with this IP, for the query log."""
        for key, pod in self._pods.items():
            if ip in pod.ips:
                return key
        return None

    @property
    def soa(self) -> Record:
        return self._soa

    def lookup(self, qname: str, qtype: int) -> Answer | None:
        """The answer for one question, or None when the name is not ours (forward it)."""
        name = _absolute(qname) or "."
        if not self.in_zone(name):
            if name in self._rr:  # a PTR we own
                return self._answer_owned(name, qtype, 0)
            return None
        return self._lookup_in_zone(name, qtype, 0)

    # --- answers -----------------------------------------------------------------------

    def _lookup_in_zone(self, name: str, qtype: int, depth: int) -> Answer:
        if name in self._rr:
            return self._answer_owned(name, qtype, depth)
        if name in self._ents:
            return Answer(NOERROR, authority=(self._soa,))
        pod = self._insecure_pod(name)
        if pod is not None:
            if qtype in (pod[0], ANY):
                return Answer(NOERROR, (Record(name, pod[0], self.ttl, pod[1]),))
            return Answer(NOERROR, authority=(self._soa,))
        if self.pods_mode == "insecure" and self._is_pod_namespace(name):
            return Answer(NOERROR, authority=(self._soa,))
        return Answer(NXDOMAIN, authority=(self._soa,))

    def _answer_owned(self, name: str, qtype: int, depth: int) -> Answer:
        rrsets = self._rrsets(name)
        ttl = self.ttl
        if qtype == ANY:
            return Answer(NOERROR, tuple(Record(name, t, ttl, d)
                                         for t, ds in rrsets.items() for d in ds))
        if qtype in rrsets:
            answers = tuple(Record(name, qtype, ttl, d) for d in rrsets[qtype])
            return Answer(NOERROR, answers, additional=self._additional(answers))
        if CNAME in rrsets:
            target = str(next(iter(rrsets[CNAME])))
            cname = Record(name, CNAME, ttl, target)
            if not self.in_zone(target):
                return Answer(NOERROR, (cname,), chase=target)
            if depth >= _MAX_CHAIN:
                return Answer(SERVFAIL, (cname,))
            rest = self._lookup_in_zone(target, qtype, depth + 1)
            return Answer(rest.rcode, (cname, *rest.answers), rest.authority, rest.additional,
                          rest.chase)
        soa = self._soa if self.in_zone(name) else self.reverse_soa(name)
        return Answer(NOERROR, authority=(soa,))

    def _additional(self, answers: tuple[Record, ...]) -> tuple[Record, ...]:
        extra: list[Record] = []
        for rec in answers:
            if isinstance(rec.rdata, Srv):
                for t in (A, AAAA):
                    for d in self._rrsets(rec.rdata.target).get(t, ()):
                        r = Record(rec.rdata.target, t, self.ttl, d)
                        if r not in extra:
                            extra.append(r)
        return tuple(extra)

    def reverse_soa(self, name: str) -> Record:
        """The SOA that NODATA at a reverse name (a PTR owner of ours) carries."""
        origin = "ip6.arpa." if name.endswith("ip6.arpa.") else "in-addr.arpa."
        s = self._soa.rdata
        assert isinstance(s, Soa)
        return Record(origin, SOA, self.ttl, s)

    def _insecure_pod(self, name: str) -> tuple[int, str] | None:
        if self.pods_mode != "insecure":
            return None
        labels = name[: -len(self.origin)].split(".")
        # ["a-b-c-d", "<ns>", "pod", ""]
        if len(labels) != 4 or labels[2] != "pod" or not labels[1]:
            return None
        text = labels[0]
        try:
            if text.count("-") == 3:
                return A, str(ipaddress.IPv4Address(text.replace("-", ".")))
            return AAAA, str(ipaddress.IPv6Address(text.replace("-", ":")))
        except ValueError:
            return None

    def _is_pod_namespace(self, name: str) -> bool:
        labels = name[: -len(self.origin)].split(".")
        return len(labels) == 3 and labels[1] == "pod" and bool(labels[0])

    # --- derived records ---------------------------------------------------------------

    def _svc_name(self, ns: str, name: str) -> str:
        return f"{name}.{ns}.svc.{self.origin}".lower()

    def _rebuild_service(self, key: _Key) -> None:
        ns, name = key
        view = self._services.get(key)
        recs: list[_Rec] = []
        if view is not None:
            owner = self._svc_name(ns, name)
            if view.kind == "ExternalName":
                if view.external_name:
                    recs.append((owner, CNAME, view.external_name))
            elif view.kind == "ClusterIP":
                for ip in view.cluster_ips:
                    recs.append((owner, _addr_type(ip), ip))
                    recs.append((ipaddress.ip_address(ip).reverse_pointer + ".", PTR, owner))
                for p in view.ports:
                    if p.name:
                        recs.append((f"_{p.name}._{p.protocol}.{owner}".lower(), SRV,
                                     Srv(0, 100, p.port, owner)))
            else:
                recs.extend(self._headless_records(view, owner))
        self._set_contrib(("svc", ns, name), recs)

    def _headless_records(self, view: ServiceView, owner: str) -> list[_Rec]:
        recs: list[_Rec] = []
        srv: list[_Rec] = []
        for sname in sorted(self._slices_of.get((view.namespace, view.name), ())):
            es = self._slices[(view.namespace, sname)]
            for ep in es.endpoints:
                if not (ep.ready or view.publish_not_ready):
                    continue
                for ip in ep.addresses:
                    host = f"{ep.hostname or dashed(ip)}.{owner}"
                    recs.append((owner, _addr_type(ip), ip))
                    recs.append((host, _addr_type(ip), ip))
                    recs.append((ipaddress.ip_address(ip).reverse_pointer + ".", PTR, host))
                    for p in es.ports:
                        if p.name:
                            srv.append((f"_{p.name}._{p.protocol}.{owner}".lower(), SRV,
                                        Srv(0, 100, p.port, host)))
        return recs + srv

    def _rebuild_pods_of_subdomain(self, key: _Key) -> None:
        for pod in sorted(self._pods_in_subdomain.get(key, ())):
            self._rebuild_pod((key[0], pod))

    def _rebuild_pod(self, key: _Key) -> None:
        ns, name = key
        pod = self._pods.get(key)
        recs: list[_Rec] = []
        if pod is not None:
            if self.pods_mode == "verified":
                for ip in pod.ips:
                    recs.append((f"{dashed(ip)}.{ns}.pod.{self.origin}".lower(),
                                 _addr_type(ip), ip))
            if pod.hostname and pod.subdomain:
                svc = self._services.get((ns, pod.subdomain))
                if svc is not None and svc.kind == "Headless" and (
                        pod.ready or svc.publish_not_ready):
                    host = f"{pod.hostname}.{self._svc_name(ns, pod.subdomain)}"
                    recs.extend((host, _addr_type(ip), ip) for ip in pod.ips)
        source = ("pod", ns, name)
        before = self._contrib.get(source, ())
        if self._set_contrib(source, recs):
            # A pod's hostname record can be the target of its Service's SRV records,
            # whose answers carry it as additional data: those answers changed too.
            for owner in {r[0] for r in (*before, *recs) if r[0].endswith(".svc." + self.origin)}:
                svc_name, svc_ns = owner.split(".")[1:3]
                for rec in self._contrib.get(("svc", svc_ns, svc_name), ()):
                    if rec[1] == SRV:
                        self._dirty.add(rec[0])

    def _set_contrib(self, source: tuple[str, str, str], recs: list[_Rec]) -> bool:
        """Make `source`'s records `recs`; False when nothing changed."""
        new = tuple(dict.fromkeys(recs))
        old = self._contrib.get(source, ())
        if old == new:
            return False
        # Touch only what differs, so unchanged names stay clean (and their answers cached).
        keep = set(new)
        gone = set(old)
        for rec in old:
            if rec not in keep:
                self._remove(rec)
        for rec in new:
            if rec not in gone:
                self._add(rec)
        if new:
            self._contrib[source] = new
        else:
            self._contrib.pop(source, None)
        return True

    def _add(self, rec: _Rec) -> None:
        owner, rtype, rdata = rec
        flat = self._rr.get(owner)
        if flat is None:
            self._rr[owner] = [rtype, rdata]
            self._ent_ref(owner, +1)
        else:
            flat += (rtype, rdata)
        if rtype == CNAME and isinstance(rdata, str) and self.in_zone(rdata):
            self._cname_into.setdefault(rdata, set()).add(owner)
        self._dirty.add(owner)

    def _remove(self, rec: _Rec) -> None:
        owner, rtype, rdata = rec
        flat = self._rr[owner]
        # Drop the last reference, so the first contributor keeps its place in answers.
        for i in range(len(flat) - 2, -1, -2):
            if flat[i] == rtype and flat[i + 1] == rdata:
                del flat[i:i + 2]
                break
        if rtype == CNAME and isinstance(rdata, str) and rdata in self._cname_into \
                and not any(flat[i] == CNAME and flat[i + 1] == rdata
                            for i in range(0, len(flat), 2)):
            self._cname_into[rdata].discard(owner)
            if not self._cname_into[rdata]:
                del self._cname_into[rdata]
        if not flat:
            del self._rr[owner]
            self._ent_ref(owner, -1)
        self._dirty.add(owner)

    def _ent_ref(self, owner: str, delta: int) -> None:
        if not self.in_zone(owner):
            return
        name = owner
        while name != self.origin:
            name = name.split(".", 1)[1]
            if name == self.origin:
                break
            count = self._ents.get(name, 0) + delta
            if count:
                if name not in self._ents:
                    self._dirty.add(name)
                self._ents[name] = count
            else:
                self._ents.pop(name, None)
                self._dirty.add(name)


class ZoneFeeder:
    """Watch events (`ADDED`/`MODIFIED`/`DELETED`, raw object) → Zone mutations.

    Wire each informer's events here; call `mark_synced()` once every informer has
    finished its first list. A `DELETED` event needs only the object's metadata.
    """

    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def on_service(self, etype: str, obj: Mapping[str, Any]) -> None:
        if etype == "DELETED":
            self.zone.delete_service(*_ns_name(obj))
        elif etype in ("ADDED", "MODIFIED"):
            self.zone.upsert_service(obj)

    def on_slice(self, etype: str, obj: Mapping[str, Any]) -> None:
        if etype == "DELETED":
            self.zone.delete_slice(*_ns_name(obj))
        elif etype in ("ADDED", "MODIFIED"):
            self.zone.upsert_slice(obj)

    def on_pod(self, etype: str, obj: Mapping[str, Any]) -> None:
        if etype == "DELETED":
            self.zone.delete_pod(*_ns_name(obj))
        elif etype in ("ADDED", "MODIFIED"):
            self.zone.upsert_pod(obj)

    def mark_synced(self) -> None:
        self.zone.mark_synced()


def _ns_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")
