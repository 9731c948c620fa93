"""Request pieces that make the tiny random model do something checkable on the real server."""

from __future__ import annotations

import json
from typing import Any

THINK_GRAMMAR = 'root ::= "<think>\\nplan it\\n</think>\\n\\nHi there"'
THINK_TEXT = "<think>\nplan it\n</think>\n\nHi there"


def calculator_tool(*, only_expression: str | None = None) -> dict[str, Any]:
    """An OpenAI tool; `only_expression` pins the argument so generated JSON is predictable."""
    expression: dict[str, Any] = {"type": "string"}
    if only_expression is not None:
        expression["enum"] = [only_expression]
    return {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression",
            "parameters": {
                "type": "object",
                "properties": {"expression": expression},
                "required": ["expression"],
            },
        },
    }


def tool_call_block(expression: str) -> str:
    """One prefilled Hermes-style call; the server parses it into a real tool call."""
    args = json.dumps({"name": "calculator", "arguments": {"expression": expression}})
    return f"<tool_call>\n{args}\n</tool_call>"
