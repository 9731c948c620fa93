"""llmcli.wire.urls: a server's root and readiness route, from a profile's base URL."""

from __future__ import annotations

import pytest

from llmcli.wire.urls import health_url, server_root


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/v1", "http://[::1]:8080"),
        ("https://gw.example/llama/v1", "https://gw.example/llama"),  # behind a path prefix
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),  # already the root
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1/"),  # as the client always did
        ("http://127.0.0.1:8080/api/v10", "http://127.0.0.1:8080/api/v10"),
    ],
)
def test_server_root(base_url: str, root: str) -> None:
    assert server_root(base_url) == root


def test_health_url_is_beside_v1() -> None:
    assert health_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/health"
