"""llmcli.net.settings: which proxy the environment asks for, and which CAs are trusted.

Table-driven against the rules curl and httpx apply (and the one loopback exception);
the real proxy and TLS server are in tests/net/test_client_network.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from llmcli.errors import ConfigError
from llmcli.net.settings import Proxy, is_loopback, proxy_for, tls_context

PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        # the scheme's own variable, lower case first
        ("https://api.example.com/v1", {"HTTPS_PROXY": PROXY}, (PROXY, "HTTPS_PROXY")),
        ("https://api.example.com/v1", {"https_proxy": PROXY}, (PROXY, "https_proxy")),
        (
            "https://api.example.com/v1",
            {"https_proxy": PROXY, "HTTPS_PROXY": "http://other:1"},
            (PROXY, "https_proxy"),
        ),
        ("http://api.example.com/v1", {"HTTP_PROXY": PROXY}, (PROXY, "HTTP_PROXY")),
        ("http://api.example.com/v1", {"HTTPS_PROXY": PROXY}, None),
        ("https://api.example.com/v1", {"HTTP_PROXY": PROXY}, None),
        # ALL_PROXY is the fallback
        ("https://api.example.com/v1", {"ALL_PROXY": PROXY}, (PROXY, "ALL_PROXY")),
        (
            "https://api.example.com/v1",
            {"ALL_PROXY": "http://all:1", "HTTPS_PROXY": PROXY},
            (PROXY, "HTTPS_PROXY"),
        ),
        # no scheme means http://, as curl reads it
        ("https://api.example.com", {"HTTPS_PROXY": "proxy.corp:3128"}, (PROXY, "HTTPS_PROXY")),
        # an empty or blank variable is unset
        ("https://api.example.com", {"HTTPS_PROXY": "  "}, None),
        ("https://api.example.com", {}, None),
    ],
)
def test_the_schemes_variable_picks_the_proxy(
    url: str, env: dict[str, str], expected: tuple[str, str] | None
) -> None:
    proxy = proxy_for(url, env)
    assert (None if proxy is None else (proxy.url, proxy.source)) == expected


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("api.example.com", "*", True),
        ("api.example.com", "example.com", True),
        ("example.com", "example.com", True),
        ("api.example.com", ".example.com", True),
        ("api.example.com", "*.example.com", True),
        ("badexample.com", "example.com", False),
        ("api.example.com", "other.org, example.com", True),
        ("api.example.com", "other.org", False),
        ("API.Example.COM", "example.com", True),
        ("api.example.com", "example.com:443", True),
        ("api.example.com", "example.com:8443", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("10.1.2.3", "10.1.2.3", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("10.1.2.3", "example.com", False),
        ("[2001:db8::1]", "2001:db8::/32", True),
        ("[2001:db8::1]", "[2001:db8::1]:443", True),
        ("api.example.com", "", False),
        ("api.example.com", " , ,", False),
    ],
)
def test_no_proxy(host: str, no_proxy: str, bypassed: bool) -> None:
    env = {"HTTPS_PROXY": PROXY, "NO_PROXY": no_proxy}
    assert (proxy_for(f"https://{host}/v1", env) is None) is bypassed


def test_lower_case_no_proxy_wins() -> None:
    env = {"HTTPS_PROXY": PROXY, "no_proxy": "other.org", "NO_PROXY": "example.com"}
    assert proxy_for("https://api.example.com", env) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://127.3.4.5:8080/v1",
        "http://localhost:8080/v1",
        "http://LOCALHOST:8080/v1",
        "http://llama.localhost/v1",
        "http://[::1]:8080/v1",
    ],
)
def test_loopback_never_goes_through_a_proxy(url: str) -> None:
    env = {"HTTP_PROXY": PROXY, "ALL_PROXY": PROXY}
    assert is_loopback(url.split("//")[1].rsplit(":", 1)[0].split("/")[0])
    assert proxy_for(url, env) is None


def test_a_non_loopback_name_is_not_loopback() -> None:
    assert not is_loopback("localhost.example.com")
    assert not is_loopback("10.0.0.1")


@pytest.mark.parametrize(
    "value", ["ftp://u:pw1@proxy:21", "http://u:pw1@", "http://u:pw1@proxy:99999"]
)
def test_an_unusable_proxy_is_one_config_error_without_echoing_it(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        proxy_for("https://api.example.com", {"HTTPS_PROXY": value})
    assert "HTTPS_PROXY" in str(caught.value)
    assert "pw1" not in str(caught.value)


def test_shown_proxy_hides_credentials() -> None:
    proxy = Proxy("http://alice:s3cret@proxy.corp:3128", "HTTPS_PROXY")
    assert proxy.shown == "http://proxy.corp:3128"
    assert "s3cret" not in proxy.shown


def _write_ca(tmp_path: Path) -> Path:
    from rig.tls import make_ca

    return make_ca(tmp_path).cert_path


def test_ca_file_wins_over_the_environment(tmp_path: Path) -> None:
    ca = _write_ca(tmp_path)
    context = tls_context(str(ca), {"SSL_CERT_FILE": "/nonexistent.pem"})
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1


def test_ssl_cert_file_replaces_the_default_roots(tmp_path: Path) -> None:
    ca = _write_ca(tmp_path)
    context = tls_context(None, {"SSL_CERT_FILE": str(ca)})
    assert len(context.get_ca_certs()) == 1


def test_the_default_trusts_public_roots() -> None:
    context = tls_context(None, {})
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) > 50  # certifi's bundle at least


@pytest.mark.parametrize("source", ["ca_file", "SSL_CERT_FILE"])
def test_a_missing_or_broken_ca_file_is_one_config_error(tmp_path: Path, source: str) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for path in (tmp_path / "missing.pem", broken):
        with pytest.raises(ConfigError) as caught:
            if source == "ca_file":
                tls_context(str(path), {})
            else:
                tls_context(None, {"SSL_CERT_FILE": str(path)})
        assert str(path) in str(caught.value)
