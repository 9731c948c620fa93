"""A conversation's branches in words: the chat's ``/branches`` list and the notes
``history show`` puts where other branches leave the one shown.

A branch is named by the seq of its last message, the number ``/branch N`` and
``history show ID --branch N`` take (any message of a branch names it, the last one
always does). Titles are model or user text: neutralised.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmcli.storage.store import Branch, Fork
from llmcli.ui.sanitize import neutralize

__all__ = ["branch_lines", "fork_note"]


def branch_lines(branches: Sequence[Branch]) -> list[str]:
    """``/branches``: one line a branch, the current one first and starred."""
    if len(branches) < 2:
        return ["one branch only: /undo, /edit-last and /retry start another"]
    width = max(len(str(branch.leaf)) for branch in branches)
    lines = ["branches (/branch N goes on from the one ending at message N):"]
    for branch in branches:
        mark = "*" if branch.current else " "
        if branch.current:
            where = "current"
        elif branch.fork is None:
            where = "from the start"
        else:
            where = f"after message {branch.fork}"
        title = f": {neutralize(branch.title)}" if branch.title else ""
        number = str(branch.leaf) if branch.length else "-"
        lines.append(
            f"{mark} {number.rjust(width)}  {_count(branch.length, 'message')}, {where}{title}"
        )
    return lines


def fork_note(fork: Fork, conversation_id: str) -> str:
    """Where other branches leave the one shown, and how to see them."""
    others = len(fork.starts)
    where = "at the start" if fork.after is None else f"after message {fork.after}"
    first = fork.starts[-1]
    starts = ", ".join(str(seq) for seq in fork.starts)
    return (
        f"↳ {others} other {'branch' if others == 1 else 'branches'} {where}"
        f" (starting at message {starts}): llmcli history show {conversation_id} --branch {first}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
