"""Mutual TLS between nodes: settings, SSL contexts, and a development certificate authority.

Rules:

- Every node holds one certificate (with its private key) and the certificate of the cluster's
  CA. The same certificate is used to listen and to dial, so node certificates carry both the
  serverAuth and clientAuth extended key usages.
- `TlsSettings` is validated when built: each file must exist and load (certificate, unencrypted
  private key matching it, CA certificate); a failure is a `TlsConfigError` naming the file, so
  a misconfigured node stops at start-up rather than failing every handshake later.
- Both contexts require TLS 1.2 or later and verify the other side against the CA only (never
  the system trust store). The server requires a client certificate (CERT_REQUIRED); the client
  checks the server's hostname, so a dialler passes `server_hostname` = the host part of the
  peer address, which must be in the certificate's subjectAltName (IP or DNS).
- `generate_dev_certs` writes a throw-away CA and node certificates (EC P-256) for development
  and tests: private key files get mode 0o600; without `force`, nothing at all is written if
  any target file exists (never a half-replaced set of files).
"""

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE: Final = "ca.pem"
CA_KEY_FILE: Final = "ca-key.pem"
NODE_COMMON_NAME_PREFIX: Final = "conclave-node-"
DEFAULT_HOSTS: Final = ("127.0.0.1", "localhost")
_PRIVATE_KEY_MODE: Final = 0o600
_CLOCK_SKEW_ALLOWANCE: Final = datetime.timedelta(minutes=5)  # hosts' clocks never agree

PrivateKey = ec.EllipticCurvePrivateKey


class TlsConfigError(ValueError):
    """A TLS file is missing, unreadable, or does not hold what it should; names the file."""


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The files of one node's TLS identity; validated on construction (see module rules)."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    def __post_init__(self) -> None:
        certs = _load_certificates(self.cert_file, "certificate")
        key = _load_private_key(self.key_file)
        _load_certificates(self.ca_file, "CA certificate")
        if _public_key_der(certs[0].public_key()) != _public_key_der(key.public_key()):
            raise TlsConfigError(
                f"TLS key file {self.key_file} does not match the certificate in {self.cert_file}"
            )


def _read_file(path: Path, role: str) -> bytes:
    if not path.exists():
        raise TlsConfigError(f"TLS {role} file {path} does not exist")
    if not path.is_file():
        raise TlsConfigError(f"TLS {role} file {path} is not a regular file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"TLS {role} file {path} cannot be read: {error}") from error


def _load_certificates(path: Path, role: str) -> list[x509.Certificate]:
    data = _read_file(path, role)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise TlsConfigError(
            f"TLS {role} file {path} holds no valid PEM certificate: {error}"
        ) from error


def _load_private_key(path: Path) -> PrivateKeyTypes:
    data = _read_file(path, "private key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:  # TypeError: the key is encrypted
        raise TlsConfigError(
            f"TLS private key file {path} holds no unencrypted PEM private key: {error}"
        ) from error


def _public_key_der(key: PublicKeyTypes) -> bytes:
    # Compare encodings: equality of public key objects differs between key types.
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- SSL contexts -----------------------------------------------------------------------------


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A context to accept connections: presents our certificate, requires the client's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure(context, settings)
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: an anonymous client is refused
    return context


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """A context to dial: verifies the server and its hostname, presents our certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _configure(context, settings)
    context.check_hostname = True  # PROTOCOL_TLS_CLIENT's default, stated because it matters
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _configure(context: ssl.SSLContext, settings: TlsSettings) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    except (ssl.SSLError, OSError) as error:
        raise TlsConfigError(
            f"TLS certificate {settings.cert_file} with key {settings.key_file} "
            f"cannot be used: {error}"
        ) from error
    try:
        # Only the cluster CA: a certificate from a public CA must not let anyone in.
        context.load_verify_locations(cafile=settings.ca_file)
    except (ssl.SSLError, OSError) as error:
        raise TlsConfigError(
            f"TLS CA certificate file {settings.ca_file} cannot be used: {error}"
        ) from error


# -- development certificates -----------------------------------------------------------------


def node_cert_file(directory: Path, node_id: int) -> Path:
    """Where `generate_dev_certs` writes the certificate of node `node_id`."""
    return directory / f"node-{node_id}.pem"


def node_key_file(directory: Path, node_id: int) -> Path:
    """Where `generate_dev_certs` writes the private key of node `node_id`."""
    return directory / f"node-{node_id}-key.pem"


def generate_dev_certs(
    directory: Path,
    node_ids: Sequence[int],
    hosts: Iterable[str] = (),
    days: int = 365,
    *,
    force: bool = False,
) -> list[Path]:
    """Write a fresh CA and one certificate per node into `directory`; return the paths written.

    Each node certificate is named `conclave-node-<id>`, valid for `days` days, for the
    subjectAltNames 127.0.0.1, localhost and `hosts` (an IP if it parses as one, else DNS).
    Raises FileExistsError (writing nothing) if a target exists and `force` is false, and
    ValueError for a bad argument.
    """
    if not node_ids:
        raise ValueError("at least one node is needed")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    names = _subject_alt_names([*DEFAULT_HOSTS, *hosts])
    targets = _target_files(directory, node_ids)
    if not force:
        existing = [path for path in targets if path.exists()]
        if existing:
            listed = ", ".join(str(path) for path in existing)
            raise FileExistsError(f"refusing to overwrite existing files: {listed}")
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - _CLOCK_SKEW_ALLOWANCE
    not_after = now + datetime.timedelta(days=days)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key, not_before, not_after)
    written = [
        _write_certificate(directory / CA_CERT_FILE, ca_cert),
        _write_private_key(directory / CA_KEY_FILE, ca_key),
    ]
    for node_id in node_ids:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _node_certificate(
            node_id,
            key,
            names,
            ca_cert=ca_cert,
            ca_key=ca_key,
            not_before=not_before,
            not_after=not_after,
        )
        written.append(_write_certificate(node_cert_file(directory, node_id), cert))
        written.append(_write_private_key(node_key_file(directory, node_id), key))
    return written


def _target_files(directory: Path, node_ids: Sequence[int]) -> list[Path]:
    targets = [directory / CA_CERT_FILE, directory / CA_KEY_FILE]
    for node_id in node_ids:
        if node_id < 1:
            raise ValueError(f"node ids start at 1, not {node_id}")
        targets += [node_cert_file(directory, node_id), node_key_file(directory, node_id)]
    return targets


def _subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(host.strip() for host in hosts):  # ordered, without duplicates
        if not host:
            raise ValueError("an empty host name cannot be put in a certificate")
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            try:
                names.append(x509.DNSName(host))
            except ValueError as error:  # e.g. a non-ASCII name: an A-label is required
                raise ValueError(f"invalid host name {host!r}: {error}") from error
    return names


def _ca_certificate(
    key: PrivateKey, not_before: datetime.datetime, not_after: datetime.datetime
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conclave-dev-ca")])
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # path_length=0: this CA signs node certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _node_certificate(
    node_id: int,
    key: PrivateKey,
    names: list[x509.GeneralName],
    *,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{NODE_COMMON_NAME_PREFIX}{node_id}")]
    )
    public_key = key.public_key()
    # Both usages: a node listens (server) and dials (client) with this one certificate.
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,  # ECDHE handshakes sign with the node key
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_certificate(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_private_key(path: Path, key: PrivateKey) -> Path:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0o600 from the start (never briefly readable by others); fchmod as well because
    # the mode given to open() does not apply to a file that already exists (force).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE_KEY_MODE)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), _PRIVATE_KEY_MODE)
        file.write(data)
    return path


__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "DEFAULT_HOSTS",
    "NODE_COMMON_NAME_PREFIX",
    "TlsConfigError",
    "TlsSettings",
    "client_context",
    "server_context",
    "generate_dev_certs",
    "node_cert_file",
    "node_key_file",
]
