"""Entry point to llmcli's mock backend; the implementation lives in :mod:`llmcli.mock`.

``from llmcli.mockserver import MockServer, MockConfig, Faults`` is the import tests and the
benchmark use; ``python -m llmcli.mockserver --help`` runs one in the foreground.
"""

from __future__ import annotations

import sys

from llmcli.mock import (
    CONTENT_WORDS,
    FAULT_NAMES,
    REASONING_WORDS,
    Dialect,
    Distribution,
    FaultName,
    Faults,
    MockConfig,
    MockServer,
    MockServerThread,
    RecordedRequest,
    ScriptedCall,
    SentFrame,
    main,
    serve_forever,
)

__all__ = [
    "CONTENT_WORDS",
    "FAULT_NAMES",
    "REASONING_WORDS",
    "Dialect",
    "Distribution",
    "FaultName",
    "Faults",
    "MockConfig",
    "MockServer",
    "MockServerThread",
    "RecordedRequest",
    "ScriptedCall",
    "SentFrame",
    "main",
    "serve_forever",
]

if __name__ == "__main__":
    sys.exit(main())
