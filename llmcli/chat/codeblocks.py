"""The fenced code blocks of a Markdown answer, as ``/copy N`` takes them.

Pure: text in, blocks out. Fences are read the way CommonMark reads them: three or more
backticks or tildes open a block (a backtick fence's info string holds no backtick), and
only a line of the same character, at least as long, with nothing after it but spaces,
closes it; so a ```` fence can hold ``` lines, and a ``~~~`` fence can hold backticks.
Unlike CommonMark, a fence may be indented any amount, because models indent fences
inside list items; the block's lines lose as much indentation as the opening fence had,
as CommonMark does. A fence still open at the end of the answer (cut by Ctrl-C or the
token limit) is a block too, running to the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["CodeBlock", "code_blocks"]

_OPENING: Final = re.compile(r"( *)(`{3,}|~{3,})(.*)")


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One block: its info string (``python``, ``bash title="x"``), its code, and whether
    its closing fence came."""

    info: str
    code: str
    closed: bool = True

    @property
    def language(self) -> str:
        return self.info.split(maxsplit=1)[0] if self.info.strip() else ""


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block of ``markdown``, in order."""
    blocks: list[CodeBlock] = []
    fence: str | None = None  # the opening fence's characters, while a block is open
    indent = 0
    info = ""
    lines: list[str] = []
    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is None:
            match = _OPENING.fullmatch(line)
            if match is None or (match[2][0] == "`" and "`" in match[3]):
                continue
            fence, indent, info, lines = match[2], len(match[1]), match[3].strip(), []
            continue
        stripped = line.strip(" ")
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            blocks.append(CodeBlock(info, "\n".join(lines)))
            fence = None
            continue
        lines.append(_dedent(line, indent))
    if fence is not None:
        while lines and not lines[-1].strip():
            lines.pop()
        blocks.append(CodeBlock(info, "\n".join(lines), closed=False))
    return blocks


def _dedent(line: str, indent: int) -> str:
    """``line`` less up to ``indent`` leading spaces."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]
