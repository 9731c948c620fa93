"""Real network middle-boxes on loopback: nginx (TLS and gzip in front of a server) and
tinyproxy (a forwarding proxy), each run from its Debian package with a config of ours.

They are what users' networks put between llmcli and a backend: a TLS gateway with a
company CA, a CDN or proxy that compresses, an HTTP(S) proxy everything must go through.
`.ci/run` installs both packages; a machine without them fails these tests with the
command to install them, never skips them.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmcli.net.settings import is_loopback

from .tls import CertAuthority

APT_HINT = "install it with: apt-get install -y nginx-light tinyproxy"


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise RuntimeError(f"{name} is not installed; {APT_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}: {log.read_text(errors='replace')}")


@contextlib.contextmanager
def _running(argv: list[str], port: int, log: Path) -> Iterator[None]:
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True, slots=True)
class Gateway:
    """nginx listening with TLS on ``port`` and passing requests to ``upstream``."""

    port: int
    access_log: Path

    def base_url(self, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}/v1"


@contextlib.contextmanager
def tls_gateway(
    directory: Path, ca: CertAuthority, upstream: str, *, gzip: bool = False, tls: bool = True
) -> Iterator[Gateway]:
    """nginx terminating TLS (a certificate from ``ca``) in front of ``upstream``
    (``http://127.0.0.1:PORT``), streaming as it arrives, gzip-compressing when asked
    (``Content-Encoding: gzip`` flushed with every piece, as a compressing CDN does).
    ``tls=False``: plain HTTP on that port (an https client then meets a 400)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log = directory / "access.log"
    compress = (
        "gzip on; gzip_proxied any; gzip_min_length 0;"
        " gzip_types text/event-stream application/json;"
        if gzip
        else "gzip off;"
    )
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format llmcli '$request $status $sent_http_content_encoding';
    access_log {access_log} llmcli;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen 127.0.0.1:{port}{" ssl" if tls else ""};
        ssl_certificate {ca.server_cert_path};
        ssl_certificate_key {ca.server_key_path};
        {compress}
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
    )
    argv = [
        _binary("nginx"),
        "-p",
        str(directory),
        "-e",
        str(directory / "error.log"),
        "-c",
        str(conf),
    ]
    with _running(argv, port, directory / "stdout.log"):
        yield Gateway(port, access_log)


@dataclass(frozen=True, slots=True)
class ForwardProxy:
    """tinyproxy on ``port``; ``log`` records each connection it forwarded."""

    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def forwarded(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def forward_proxy(directory: Path) -> Iterator[ForwardProxy]:
    """tinyproxy accepting only this machine, forwarding http and tunnelling https."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "tinyproxy.log"
    conf = directory / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\n"
        f'LogFile "{log}"\nLogLevel Info\nPidFile "{directory}/tinyproxy.pid"\n'
        "MaxClients 16\nDisableViaHeader Yes\n"
    )
    with _running([_binary("tinyproxy"), "-d", "-c", str(conf)], port, directory / "stdout.log"):
        yield ForwardProxy(port, log)


def name_for_loopback() -> str:
    """A host name that resolves to this machine's loopback but is not spelled as loopback.

    llmcli never sends loopback through a proxy (llmcli.net.settings), so a test of the proxy
    needs a name only the resolver knows is local: the proxy resolves it and connects
    to 127.0.0.1, and no traffic leaves the machine. /etc/hosts names the machine itself.
    """
    candidates = [socket.gethostname()]
    with contextlib.suppress(OSError):
        for line in Path("/etc/hosts").read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if fields and fields[0].startswith("127."):
                candidates += fields[1:]
    for name in dict.fromkeys(candidates):
        if is_loopback(name):
            continue
        try:
            infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = {info[4][0] for info in infos}
        if addresses and all(a.startswith("127.") or a == "::1" for a in addresses):
            return name
    raise RuntimeError(
        "no host name here resolves to loopback only; add one to /etc/hosts, e.g. "
        "'127.0.0.1 llmcli-test'"
    )
