"""Test rig: a real llama-server running a tiny generated model.

- `tinymodel.write_tiny_model` writes a ~0.5 MB random-weight llama GGUF.
- `templates` holds the chat templates embedded in it (tools/think ChatML, plain ChatML).
- `llama_server.LlamaServer` starts, health-checks and stops the real binary.

`tests/conftest.py` wires these into session fixtures.
"""

from __future__ import annotations

from .llama_server import LlamaServer, LlamaServerError, LoadingGate, find_llama_server
from .templates import PLAIN_CHATML_TEMPLATE, TOOLS_THINK_TEMPLATE
from .tinymodel import QUANTIZED_SHAPE, TinyShape, TinyVocab, build_vocab, write_tiny_model

__all__ = [
    "PLAIN_CHATML_TEMPLATE",
    "QUANTIZED_SHAPE",
    "TOOLS_THINK_TEMPLATE",
    "LlamaServer",
    "LlamaServerError",
    "LoadingGate",
    "TinyShape",
    "TinyVocab",
    "build_vocab",
    "find_llama_server",
    "write_tiny_model",
]
