"""Which tools a run offers: the built-ins, a user's tools file, narrowed by ``--tool``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from llmcli.errors import UsageError
from llmcli.tools.builtin import builtin_tools
from llmcli.tools.files import Root
from llmcli.tools.tool import Confirmer
from llmcli.tools.toolbox import Toolbox
from llmcli.tools.user import load_user_tools

PYTHON = "python"


def build_toolbox(
    *,
    root: Path,
    confirm: Confirmer,
    allow_python: bool = False,
    tools_file: Path | None = None,
    only: Sequence[str] = (),
    key_variables: Iterable[str] = (),
) -> Toolbox:
    """The toolbox for one run; raises ``UsageError``/``ConfigError`` for bad choices.

    ``key_variables``: the variables profiles read keys from, kept from the user's tools.
    """
    try:
        confined = Root(root)
    except ValueError as error:
        raise UsageError(f"--root {error}") from None
    tools = builtin_tools(confined, allow_python=allow_python)
    if tools_file is not None:
        reserved = frozenset({tool.name for tool in tools} | {PYTHON})
        tools += load_user_tools(tools_file, reserved=reserved, key_variables=key_variables)
    toolbox = Toolbox(tools, confirm=confirm)
    if PYTHON in only and not allow_python:
        raise UsageError(
            "the python tool runs code on this machine: add --allow-python to offer it"
        )
    return toolbox.select(only) if only else toolbox
