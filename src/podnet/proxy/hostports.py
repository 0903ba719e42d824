"""NodePorts on the host's 127.0.0.1, so a user reaches a NodePort Service without a tunnel.

One small table in the HOST namespace, owned by one cluster (`ip podnet-host-<cluster>`):
connections from the host to 127.0.0.1:<30000-32767> are sent to the node's IP, same port
(where the node's proxy table serves NodePorts), and their loopback source is rewritten to
the host's address on the node link (a packet from 127.0.0.1 may not leave by a real link).
`route_localnet` is enabled on the node link alone, which lets such a packet be routed out
of it; the setting disappears with the link. Nothing else on the host is touched.
"""

from __future__ import annotations

from typing import Any

from podnet.kernel.run import KernelError, run

NODEPORT_RANGE = (30000, 32767)


def table_name(cluster: str) -> str:
    return f"podnet-host-{cluster}"


def commands(cluster: str, host_link: str, node_ip: str,
             ports: tuple[int, int] = NODEPORT_RANGE) -> list[dict[str, Any]]:
    """The whole table as one libnftables JSON transaction (pure)."""
    table = {"family": "ip", "name": table_name(cluster)}
    where = {"family": "ip", "table": table_name(cluster)}
    low, high = ports
    dport = {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}},
                       "right": {"range": [low, high]}}}
    return [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
        {"add": {"chain": {**where, "name": "output", "type": "nat", "hook": "output",
                           "prio": -100, "policy": "accept"}}},
        {"add": {"chain": {**where, "name": "postrouting", "type": "nat",
                           "hook": "postrouting", "prio": 100, "policy": "accept"}}},
        *({"add": {"rule": {**where, "chain": "output", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                       "right": "127.0.0.1"}},
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": proto}},
            dport,
            {"dnat": {"addr": node_ip}},
        ]}}} for proto in ("tcp", "udp")),
        {"add": {"rule": {**where, "chain": "postrouting", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": "127.0.0.1"}},
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": host_link}},
            {"masquerade": None},
        ]}}},
    ]


async def install(cluster: str, host_link: str, node_ip: str) -> None:
    import json
    import tempfile

    await run("sysctl", "-q", "-w", f"net.ipv4.conf.{host_link}.route_localnet=1")
    doc = json.dumps({"nftables": commands(cluster, host_link, node_ip)})
    # A file, not stdin: under uvloop a child's stdin is a socket, which `nft -f -`
    # cannot open as /dev/stdin.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        fh.write(doc)
        fh.flush()
        await run("nft", "-j", "-f", fh.name)


async def remove(cluster: str) -> None:
    try:
        await run("nft", "delete", "table", "ip", table_name(cluster))
    except KernelError as err:
        if "No such file" not in err.stderr and "does not exist" not in err.stderr:
            raise
