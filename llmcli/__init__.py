"""llmcli: a terminal client and benchmark for OpenAI-compatible LLM backends."""

from __future__ import annotations

__version__ = "0.1.0"
