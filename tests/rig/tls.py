"""A throwaway certificate authority for tests, made with trustme.

``make_ca(directory)`` writes the CA's certificate and a server certificate (with its key)
for the names tests connect to, as PEM files a real TLS server (nginx) and a client's
``SSL_CERT_FILE`` or ``ca_file`` can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True, slots=True)
class CertAuthority:
    cert_path: Path  # the CA's certificate: what a client must trust
    server_cert_path: Path  # the server's chain (leaf first)
    server_key_path: Path


def make_ca(directory: Path, names: tuple[str, ...] = ()) -> CertAuthority:
    """A new CA and a certificate it signed for localhost, 127.0.0.1, ::1 and ``names``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="llmcli test CA")
    hosts = ("localhost", "127.0.0.1", "::1", *names)
    leaf = ca.issue_cert(*dict.fromkeys(hosts))
    cert_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(cert_path))
    server_cert = directory / "server.pem"
    server_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    server_key = directory / "server.key"
    leaf.private_key_pem.write_to_path(str(server_key))
    return CertAuthority(cert_path, server_cert, server_key)
