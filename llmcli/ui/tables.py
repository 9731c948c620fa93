"""Rows for people and for pipes: one table printer for the listing commands.

Piped, each row is one line of tab-separated cells and there is no header, so ``cut`` and
``awk`` read it. In a terminal it is a rich table with a bold header row. Either way every
cell is neutralised (a profiles file or a server's model name is untrusted text) and
folded onto one line. Cells are never wrapped or cut, except in the columns named: a
``prose`` column (a sentence) wraps at spaces; ``shrink`` columns give up width, in the
order named, cut with an ellipsis, so that every row stays one line and what a user must
copy (an id, a date, a URL) is always whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmcli.ui.sanitize import neutralize
from llmcli.ui.terminal import Terminal

COLUMN_GAP = 2  # the spaces rich puts between columns of a table without a box


def print_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    terminal: Terminal,
    prose: Sequence[str] = (),
    shrink: Sequence[str] = (),
    right: Sequence[str] = (),
) -> None:
    """Print ``rows`` under ``columns`` (see the module docstring); ``right``-justified."""
    texts = [[" ".join(neutralize(cell).split()) for cell in row] for row in rows]
    if not terminal.stdout_isatty:
        for row in texts:
            terminal.stdout.write("\t".join(row) + "\n")
        return
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    console = Console(file=terminal.stdout, highlight=False)
    widths: dict[str, int] = {}
    if shrink:
        needs = {
            name: max([cell_len(name)] + [cell_len(row[i]) for row in texts])
            for i, name in enumerate(columns)
        }
        fixed = sum(need for name, need in needs.items() if name not in shrink)
        room = console.width - fixed - COLUMN_GAP * (len(columns) - 1)
        if sum(needs[name] for name in shrink) > room:
            # Each shrinking column gets what it needs up to an even share of what is
            # left, the last one all the rest.
            for index, name in enumerate(shrink):
                last = index == len(shrink) - 1
                share = room if last else room // (len(shrink) - index)
                widths[name] = max(1, min(needs[name], share) if not last else share)
                room -= widths[name]
    table = Table(
        *(
            Column(
                name,
                no_wrap=name not in prose,
                # Only a shrinking column is cut; on a screen too narrow even for the
                # others, an id or a URL folds rather than lose its end.
                overflow="ellipsis" if name in shrink else "fold",
                max_width=widths.get(name),
                justify="right" if name in right else "left",
            )
            for name in columns
        ),
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for row in texts:
        table.add_row(*(Text(cell) for cell in row))  # Text: a '[' in a value is not markup
    console.print(table)
