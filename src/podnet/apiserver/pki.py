"""The cluster's PKI: one CA, the API server's serving certificate, the admin client
certificate and the ServiceAccount token signing key pair.

Everything lives in `<state_dir>/pki/` with kubeadm's file names, is created on the first
run and loaded on later ones, so kubeconfigs and pod `ca.crt` files written earlier stay
valid across restarts. The serving certificate alone is re-issued when the addresses it
must cover change (e.g. a new node-link address), because clients check the SAN against
the address they dialled (`IP:127.0.0.1` for kubectl, `IP:10.96.0.1` in pods).

Key choices and why:
- EC P-256 for the CA and leaf certificates: generation takes microseconds and every TLS
  stack podnet meets (Go, OpenSSL, Python) accepts it.
- RSA 2048 for the ServiceAccount key: Kubernetes signs tokens with RS256 and some
  in-cluster consumers (OIDC discovery clients) only know RSA. It is the slow part of
  start-up (~15-70 ms), which is why it is generated once and kept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
# Re-issue leaf certificates this long before they expire, so a long-lived state dir never
# serves an expired certificate.
RENEW_BEFORE = dt.timedelta(days=30)
# Backdate `notBefore` so a client whose clock is slightly behind still accepts a fresh
# certificate (kube-apiserver's self-signed certs allow for the same skew).
CLOCK_SKEW = dt.timedelta(minutes=5)

CA_COMMON_NAME = "podnet-ca"
SERVER_COMMON_NAME = "kube-apiserver"
ADMIN_COMMON_NAME = "kubernetes-admin"
ADMIN_ORGANIZATION = "system:masters"
SERVER_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of the PKI files and their PEM contents, loaded once."""

    directory: Path
    ca_cert_path: Path
    ca_key_path: Path
    server_cert_path: Path
    server_key_path: Path
    admin_cert_path: Path
    admin_key_path: Path
    sa_key_path: Path
    sa_pub_path: Path
    ca_cert_pem: bytes
    ca_key_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    admin_cert_pem: bytes
    admin_key_pem: bytes
    sa_key_pem: bytes
    sa_pub_pem: bytes


def ensure_pki(
    state_dir: Path,
    *,
    service_ip: str = "10.96.0.1",
    extra_ips: Iterable[str] = (),
    extra_names: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Pki:
    """Create what is missing under `<state_dir>/pki/`, re-issue what is stale, load it all.

    Stale means: a leaf not signed by the current CA, within `RENEW_BEFORE` of expiry, or
    (for the serving certificate) with a SAN set different from the one requested now.
    """
    now = now or dt.datetime.now(dt.UTC)
    d = state_dir / "pki"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    paths = {
        "ca_cert": d / "ca.crt",
        "ca_key": d / "ca.key",
        "server_cert": d / "apiserver.crt",
        "server_key": d / "apiserver.key",
        "admin_cert": d / "admin.crt",
        "admin_key": d / "admin.key",
        "sa_key": d / "sa.key",
        "sa_pub": d / "sa.pub",
    }

    ca_key, ca_cert = _load_pair(paths["ca_cert"], paths["ca_key"])
    if ca_key is None or ca_cert is None or _expiring(ca_cert, now):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _issue_ca(ca_key, now)
        _write(paths["ca_key"], _key_pem(ca_key), 0o600)
        _write(paths["ca_cert"], ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{paths['ca_key']}: the cluster CA key must be an EC key")

    ips = _unique(["127.0.0.1", service_ip, *extra_ips])
    names = _unique([*SERVER_DNS_NAMES, *extra_names])
    want_sans = (
        frozenset(ipaddress.ip_address(i) for i in ips),
        frozenset(names),
    )
    key, cert = _load_pair(paths["server_cert"], paths["server_key"])
    if key is None or cert is None or not _leaf_ok(cert, ca_cert, now) or _sans(cert) != want_sans:
        server_key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_leaf(
            ca_key,
            ca_cert,
            server_key.public_key(),
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_COMMON_NAME)]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            now,
            san=x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
                + [x509.DNSName(n) for n in names]
            ),
        )
        _write(paths["server_key"], _key_pem(server_key), 0o600)
        _write(paths["server_cert"], cert.public_bytes(serialization.Encoding.PEM), 0o644)

    key, cert = _load_pair(paths["admin_cert"], paths["admin_key"])
    if key is None or cert is None or not _leaf_ok(cert, ca_cert, now):
        admin_key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_leaf(
            ca_key,
            ca_cert,
            admin_key.public_key(),
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_ORGANIZATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_COMMON_NAME),
                ]
            ),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            now,
        )
        _write(paths["admin_key"], _key_pem(admin_key), 0o600)
        _write(paths["admin_cert"], cert.public_bytes(serialization.Encoding.PEM), 0o644)

    # The SA key is independent of the CA: keeping it across a CA rotation keeps every
    # token already mounted in a pod valid.
    if not (paths["sa_key"].exists() and paths["sa_pub"].exists()):
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(paths["sa_key"], _key_pem(sa_key), 0o600)
        pub = sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(paths["sa_pub"], pub, 0o644)

    pem = {k: p.read_bytes() for k, p in paths.items()}
    return Pki(
        directory=d,
        ca_cert_path=paths["ca_cert"],
        ca_key_path=paths["ca_key"],
        server_cert_path=paths["server_cert"],
        server_key_path=paths["server_key"],
        admin_cert_path=paths["admin_cert"],
        admin_key_path=paths["admin_key"],
        sa_key_path=paths["sa_key"],
        sa_pub_path=paths["sa_pub"],
        ca_cert_pem=pem["ca_cert"],
        ca_key_pem=pem["ca_key"],
        server_cert_pem=pem["server_cert"],
        server_key_pem=pem["server_key"],
        admin_cert_pem=pem["admin_cert"],
        admin_key_pem=pem["admin_key"],
        sa_key_pem=pem["sa_key"],
        sa_pub_pem=pem["sa_pub"],
    )


def server_ssl_context(pki: Pki) -> ssl.SSLContext:
    """TLS for the API server: client certificates are requested, not required.

    kubectl with the admin kubeconfig authenticates by certificate; pods and the Python
    client authenticate with a bearer token and present none, so `CERT_OPTIONAL`. A
    certificate that *is* presented must chain to the cluster CA (and carry clientAuth),
    otherwise the handshake fails, which is what kube-apiserver does too. Only
    `http/1.1` is offered over ALPN: Go clients then stay on HTTP/1.1, which the
    websocket (exec, port-forward) paths need anyway.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(pki.server_cert_path), str(pki.server_key_path))
    ctx.load_verify_locations(cadata=pki.ca_cert_pem.decode())
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_ssl_context(pki: Pki, *, admin: bool = True) -> ssl.SSLContext:
    """A client context trusting the cluster CA, presenting the admin certificate if asked.

    For in-process clients and tests; hostname checking stays on.
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=pki.ca_cert_pem.decode())
    if admin:
        ctx.load_cert_chain(str(pki.admin_cert_path), str(pki.admin_key_path))
    return ctx


# --- helpers --------------------------------------------------------------------------


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signatures for every certificate; certificate and CRL signing for the CA only."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _issue_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )


def _issue_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    now: dt.datetime,
    *,
    san: x509.SubjectAlternativeName | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _load_pair(
    cert_path: Path, key_path: Path
) -> tuple[PrivateKeyTypes | None, x509.Certificate | None]:
    """(key, cert) from disk, or Nones when either is missing or unreadable."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None, None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return None, None
    return key, cert


def _expiring(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_after_utc - now < RENEW_BEFORE


def _leaf_ok(cert: x509.Certificate, ca_cert: x509.Certificate, now: dt.datetime) -> bool:
    if _expiring(cert, now):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _sans(cert: x509.Certificate) -> tuple[frozenset[IPAddress], frozenset[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    return (
        frozenset(
            ip
            for ip in ext.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        ),
        frozenset(ext.get_values_for_type(x509.DNSName)),
    )


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with the final mode from the start, so a key is never readable
    by others, not even for a moment, and a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by the umask; fchmod is not
        f.write(data)
    os.replace(tmp, path)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))
