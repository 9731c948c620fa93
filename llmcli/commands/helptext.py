"""How every command's ``--help`` reads: ``-h`` as ``--help``, and plain argument names.

Each command's examples sit in its own docstring (or its group's ``help``), in a ``\\b``
paragraph so click keeps their lines; placeholders are upper-case words (``TEXT``,
``INTEGER``, ``FILE``, ``NAME``), and an option with fixed choices lists them
(``[show|hide|collapse]``).

A mistake on the command line (an unknown option, a value of the wrong type, a missing
argument) is one line on stderr, as every other error is: ``llmcli: error: ...`` naming
the help to read, not click's four lines of usage, hint, blank and message.
"""

from __future__ import annotations

from typing import IO, Any

from typer.core import TyperArgument, TyperCommand, TyperGroup

try:  # typer 0.28 carries its own copy of click; earlier releases use click itself
    from typer import _click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer
    import click as _click  # type: ignore[no-redef,unused-ignore]
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment,no-redef,unused-ignore]

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


class Group(TyperGroup):
    """The root command group: click's usage errors, from any command below it, come out as
    one ``llmcli: error:`` line (they pass through here while the command line is parsed)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: _click.Context | None = None,
        **extra: Any,
    ) -> _click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as error:
            raise one_line(error) from None

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:
            raise one_line(error) from None


class OneLineUsageError(UsageError):
    """A usage error shown as one line, with the command whose help explains it."""

    def show(self, file: IO[Any] | None = None) -> None:
        from llmcli.ui.notices import report  # only on this path: start-up stays lean

        message = self.format_message().strip().rstrip(".")
        if message[:1].isupper() and message[1:2].islower():
            message = message[0].lower() + message[1:]
        path = self.ctx.command_path if self.ctx is not None else "llmcli"
        report(f"error: {message} ({path} -h for help)")


def one_line(error: UsageError) -> UsageError:
    """``error`` as a one-line usage error; a bare group's help (no arguments) stays help."""
    if isinstance(error, OneLineUsageError | NoArgsIsHelpError):
        return error
    shown = OneLineUsageError(error.format_message(), error.ctx)
    shown.exit_code = error.exit_code
    return shown
