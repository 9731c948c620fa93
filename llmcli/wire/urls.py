"""Where a server's own routes live, from the base URL a profile gives.

A profile's ``base_url`` is the OpenAI-compatible root (``http://host:port/v1``);
llama-server keeps its own routes (``/health``, ``/props``, ``/slots``, ``/tokenize``)
beside ``/v1``, at the server root. Pure: no I/O.
"""

from __future__ import annotations

HEALTH_PATH = "/health"


def server_root(base_url: str) -> str:
    """``http://host:port/v1`` -> ``http://host:port``; a URL not ending in ``/v1`` is the root."""
    return base_url.removesuffix("/v1")


def health_url(base_url: str) -> str:
    """llama-server's readiness route: 200 when the model is loaded, 503 while loading."""
    return server_root(base_url) + HEALTH_PATH
