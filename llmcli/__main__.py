"""Entry point of the ``llmcli`` console script and ``python -m llmcli``.

``--version`` is answered before the CLI framework is imported: it is the command scripts
call most to check for llmcli, and importing typer alone costs more than its budget.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from llmcli import __version__

        sys.stdout.write(f"llmcli {__version__}\n")
        return
    from llmcli.cli import run

    run(sys.argv[1:])


if __name__ == "__main__":
    main()
