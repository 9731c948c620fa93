"""llmcli: a terminal client and benchmark for OpenAI-compatible LLM backends."""

from __future__ import annotations

import sys
import types

__version__ = "0.1.0"


def _leave_out_httpx_cli() -> None:
    """Let ``import httpx`` skip httpx's own command-line client.

    httpx's ``__init__`` imports ``httpx._main`` (its ``httpx`` command) whenever click is
    installed, and click comes with many packages (Dask, the ``cluster`` extra, among
    them). That import pulls in click, pygments and rich's syntax highlighting: 40 ms on
    every llmcli command here (benchmarks/README.md), for a program llmcli never runs. A
    stand-in module, put in place before httpx is first imported, makes the import free;
    ``httpx.main`` is the stand-in's, and the ``httpx`` command, a process of its own, is
    unaffected.
    """
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "httpx's command line, not loaded by llmcli")

    def main() -> None:
        raise SystemExit("httpx's command line is not loaded inside llmcli; run `httpx` itself")

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


_leave_out_httpx_cli()
