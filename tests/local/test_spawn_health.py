"""llmcli.local.spawn.health_status: the one readiness probe of a local llama-server, against
the mock server speaking llama-server's dialect (ready, loading) and a port nobody holds."""

from __future__ import annotations

import socket

import httpx

from llmcli.local.spawn import health_status
from llmcli.mock import MockConfig, MockServerThread


def test_ready_server_answers_200() -> None:
    with MockServerThread(MockConfig(dialect="llamacpp")) as mock, httpx.Client() as http:
        assert health_status(http, mock.base_url) == 200
        assert [r.path for r in mock.server.requests] == ["/health"]


def test_loading_server_answers_503() -> None:
    config = MockConfig(dialect="llamacpp", loading_seconds=60.0)
    with MockServerThread(config) as mock, httpx.Client() as http:
        assert health_status(http, mock.base_url) == 503


def test_nothing_listening_is_none() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = holder.getsockname()[1]
        with httpx.Client() as http:
            assert health_status(http, f"http://127.0.0.1:{port}/v1") is None
