"""The files the kubelet writes for every pod: resolv.conf, hosts, hostname, ServiceAccount.

Pure: raw pod dicts (and the host's resolv.conf text) in, file contents out. The rules are
the kubelet's (`pkg/kubelet/network/dns/dns.go`, `kubelet_pods.go`) and the layout of
resolv.conf is containerd's (`search`, then `nameserver` lines, then `options`), which is
what `cat /etc/resolv.conf` shows in a kind or kubeadm cluster today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"

# Kubelet limits (validation.MaxDNSNameservers, MaxDNSSearchPaths, MaxDNSSearchListChars).
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
HOSTNAME_MAX = 63

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True, slots=True)
class DNSConfig:
    nameservers: tuple[str, ...]
    searches: tuple[str, ...]
    options: tuple[str, ...]

    def render(self) -> str:
        out = ""
        if self.searches:
            out += "search " + " ".join(self.searches) + "\n"
        for ns in self.nameservers:
            out += f"nameserver {ns}\n"
        if self.options:
            out += "options " + " ".join(self.options) + "\n"
        return out


def parse_resolv_conf(text: str) -> DNSConfig:
    """The host's resolv.conf as the kubelet reads it (`parseResolvConf`)."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0]
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            nameservers.append(fields[1])
        elif fields[0] == "search":
            # Only the last search line counts, and "." is dropped (kubelet does both).
            searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            options = _merge_options(options, fields[1:])
    return DNSConfig(tuple(nameservers), tuple(searches), tuple(options))


def dns_config(
    pod: Mapping[str, Any],
    host_resolv_conf: str = "",
    *,
    cluster_dns: str = CLUSTER_DNS,
    cluster_domain: str = CLUSTER_DOMAIN,
) -> DNSConfig:
    """The pod's DNS settings per spec.dnsPolicy, with spec.dnsConfig merged on top.

    Unlike the kubelet, ClusterFirst does not append the host's search domains: podnet's
    pods live on one machine whose search path means nothing inside the cluster.
    """
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"  # the kubelet's rule: ClusterFirst on hostNetwork means Default
    base: DNSConfig
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        base = DNSConfig(
            (cluster_dns,),
            (f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain),
            ("ndots:5",),
        )
    elif policy == "Default":
        base = parse_resolv_conf(host_resolv_conf)
    else:  # "None": everything comes from dnsConfig
        base = DNSConfig((), (), ())
    extra = spec.get("dnsConfig") or {}
    nameservers = _unique([*base.nameservers, *(extra.get("nameservers") or [])])
    searches = _unique([*base.searches, *(extra.get("searches") or [])])
    pod_options: list[str] = []
    for opt in extra.get("options") or []:
        name = str(opt.get("name", ""))
        value = opt.get("value")
        pod_options.append(f"{name}:{value}" if value not in (None, "") else name)
    options = _merge_options(list(base.options), pod_options)
    return DNSConfig(
        tuple(nameservers[:MAX_NAMESERVERS]), tuple(_fit_searches(searches)), tuple(options)
    )


def resolv_conf(
    pod: Mapping[str, Any],
    host_resolv_conf: str = "",
    *,
    cluster_dns: str = CLUSTER_DNS,
    cluster_domain: str = CLUSTER_DOMAIN,
) -> str:
    """/etc/resolv.conf inside the pod."""
    return dns_config(
        pod, host_resolv_conf, cluster_dns=cluster_dns, cluster_domain=cluster_domain
    ).render()


def hostname_and_domain(
    pod: Mapping[str, Any], cluster_domain: str = CLUSTER_DOMAIN
) -> tuple[str, str]:
    """(hostname, domain): spec.hostname or the pod name cut to 63 characters, and
    `<subdomain>.<ns>.svc.<cluster domain>` when spec.subdomain is set, else ""."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(spec.get("hostname") or meta.get("name") or "")
    if len(name) > HOSTNAME_MAX:
        # truncatePodHostnameIfNeeded: cut, then drop trailing '-' and '.'.
        name = name[:HOSTNAME_MAX].rstrip("-.")
    domain = ""
    if spec.get("subdomain"):
        ns = meta.get("namespace") or "default"
        domain = f"{spec['subdomain']}.{ns}.svc.{cluster_domain}"
    return name, domain


def hostname(pod: Mapping[str, Any], cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """The pod's hostname (the FQDN when spec.setHostnameAsFQDN and a subdomain are set)."""
    name, domain = hostname_and_domain(pod, cluster_domain)
    if (pod.get("spec") or {}).get("setHostnameAsFQDN") and domain:
        return f"{name}.{domain}"
    return name


def hostname_file(pod: Mapping[str, Any], cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """/etc/hostname inside the pod."""
    return hostname(pod, cluster_domain) + "\n"


def hosts_file(
    pod: Mapping[str, Any], pod_ips: Sequence[str], cluster_domain: str = CLUSTER_DOMAIN
) -> str:
    """/etc/hosts exactly as the kubelet writes it (`managedHostsFileContent`)."""
    name, domain = hostname_and_domain(pod, cluster_domain)
    out = (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
    )
    for ip in pod_ips:
        out += f"{ip}\t{name}.{domain}\t{name}\n" if domain else f"{ip}\t{name}\n"
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if aliases:
        out += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            out += f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []) + "\n"
    return out


def service_account_files(token: str, ca_crt: bytes | str, namespace: str) -> dict[str, bytes]:
    """The ServiceAccount directory: `token` never ends in a newline, because
    the Python client sends the file's bytes as they are and a trailing "\\n" makes the
    header invalid."""
    ca = ca_crt.encode() if isinstance(ca_crt, str) else ca_crt
    return {
        "token": token.rstrip("\r\n").encode(),
        "ca.crt": ca,
        "namespace": namespace.encode(),
    }


def automount_service_account_token(
    pod: Mapping[str, Any], service_account: Mapping[str, Any] | None = None
) -> bool:
    """The pod's setting wins over the ServiceAccount's; both default to true."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if service_account and service_account.get("automountServiceAccountToken") is not None:
        return bool(service_account["automountServiceAccountToken"])
    return True


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(existing: Iterable[str], more: Iterable[str]) -> list[str]:
    """`mergeDNSOptions`: later options replace earlier ones of the same name (the kubelet
    goes through a Go map; podnet keeps first-seen order so the file is stable)."""
    merged: dict[str, str | None] = {}
    for op in [*existing, *more]:
        name, sep, value = op.partition(":")
        merged[name] = value if sep and value else None
    return [name if value is None else f"{name}:{value}" for name, value in merged.items()]


def _fit_searches(searches: list[str]) -> list[str]:
    """Drop search domains beyond the kubelet's count and length limits."""
    kept: list[str] = []
    total = 0
    for s in searches[:MAX_SEARCH_PATHS]:
        total += len(s) + (1 if kept else 0)
        if total > MAX_SEARCH_CHARS:
            break
        kept.append(s)
    return kept
