"""How every command's ``--help`` reads: ``-h`` as ``--help``, and plain argument names.

Each command's examples sit in its own docstring (or its group's ``help``), in a ``\\b``
paragraph so click keeps their lines; placeholders are upper-case words (``TEXT``,
``INTEGER``, ``FILE``, ``NAME``), and an option with fixed choices lists them
(``[show|hide|collapse]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperArgument, TyperCommand

if TYPE_CHECKING:
    from typer import _click

# On the root app and every sub-app, so each command also answers -h.
HELP_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


class Command(TyperCommand):
    """A typer command whose usage line shows a required argument as ``NAME``, as click
    does, not as typer's ``{NAME}`` (optional ones stay ``[NAME]``)."""

    def collect_usage_pieces(self, ctx: _click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument) and param.required:
                pieces.append(param.make_metavar(ctx))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces
