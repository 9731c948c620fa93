"""How llmcli reaches a server through the user's network: proxies and TLS trust.

Users behind a company proxy or a TLS-inspecting gateway already told curl and httpx how
to get out; llmcli reads the same settings the same way, so nothing is configured twice.

Proxies (``proxy_for``), as curl and httpx read them:

- ``https_proxy`` / ``HTTPS_PROXY`` for https URLs, ``http_proxy`` / ``HTTP_PROXY`` for
  http ones, else ``all_proxy`` / ``ALL_PROXY``; the lower-case name wins. A proxy given
  without a scheme is ``http://`` (curl does the same).
- ``no_proxy`` / ``NO_PROXY``: ``*`` for every host, else a comma-separated list of host
  names (matching the name and every name under it; a leading ``.`` or ``*.`` is
  ignored), IP addresses, CIDR ranges (``10.0.0.0/8``), each optionally with ``:PORT``.
- One difference, on purpose: loopback (``localhost``, ``*.localhost``, ``127.0.0.0/8``,
  ``::1``) never goes through a proxy. A proxy runs on another machine and cannot reach
  this one's loopback, so a local llama-server would be unreachable for everyone who
  keeps ``HTTPS_PROXY`` in their shell. Go's net/http makes the same exception.

TLS trust (``tls_context``): a profile's ``ca_file`` replaces the trusted roots (like
curl's ``--cacert``); else ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` do (as OpenSSL, curl and
httpx read them); else the system's roots and certifi's together, so a company CA the
administrator installed system-wide is trusted (as curl trusts it), and a machine with no
system store still verifies public servers (as httpx does). Verification is never off.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from llmcli.errors import ConfigError

LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy to send a URL's requests through, and the variable that named it."""

    url: str
    source: str

    @property
    def shown(self) -> str:
        """The proxy's URL without credentials: safe to print."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"


def is_loopback(host: str) -> bool:
    """Is ``host`` (a name or an address, IPv6 with or without brackets) this machine?"""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_for(url: str, env: Mapping[str, str]) -> Proxy | None:
    """The proxy the environment asks for to reach ``url``; ``None`` for a direct line."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or is_loopback(host):
        return None
    port = parts.port or (443 if scheme == "https" else 80)
    if _bypassed(host, port, _first(env, "no_proxy", "NO_PROXY")[0]):
        return None
    value, source = _first(env, f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
    if not value:
        value, source = _first(env, "all_proxy", "ALL_PROXY")
    if not value:
        return None
    return Proxy(_check_proxy_url(value, source), source)


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str]:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value, name
    return "", ""


def _check_proxy_url(value: str, source: str) -> str:
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        # Not echoed: a proxy URL may carry a password.
        raise ConfigError(
            f"{source} is not a proxy URL llmcli can use (http://HOST:PORT, https:// or "
            "socks5://); fix or unset it"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"{source} has a bad port; use http://HOST:PORT") from None
    return value


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Does a ``no_proxy`` list name this host (and port)?"""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.removeprefix("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port`` or a bare host, address or CIDR range."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def tls_context(ca_file: str | None, env: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context to verify servers with; see the module docstring for the order."""
    if ca_file:
        return _context_from(ca_file, None, "the profile's ca_file")
    cert_file = env.get("SSL_CERT_FILE", "").strip() or None
    cert_dir = env.get("SSL_CERT_DIR", "").strip() or None
    if cert_file or cert_dir:
        source = "SSL_CERT_FILE" if cert_file else "SSL_CERT_DIR"
        return _context_from(cert_file, cert_dir, source)
    return _default_context()


@functools.cache
def _context_from(cafile: str | None, capath: str | None, source: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as error:
        where = cafile or capath
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
        raise ConfigError(
            f"{source} {where!r} cannot be used as CA certificates: {reason}; "
            "point it at a PEM file (or a c_rehash'ed directory for SSL_CERT_DIR)"
        ) from None


@functools.cache
def _default_context() -> ssl.SSLContext:
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()  # the system's roots, where it has any
    return context
