"""Code blocks that paste as written: no margin, no padding, in colour and without,
at the top level and inside list items."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from llmcli.ui.markdown import CODE_THEME, PastableMarkdown

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DOCUMENT = """Run this:

```python
def main():
    if True:
        return 1
```

Or this:

    indented code

1. Then:

   ```sh
   make check
   ```
2. Done.
"""


def render(text: str, *, colour: bool, width: int = 60) -> list[str]:
    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=colour, color_system="standard" if colour else None
    )
    console.print(PastableMarkdown(text, code_theme=CODE_THEME))
    return ANSI.sub("", out.getvalue()).split("\n")


@pytest.mark.parametrize("colour", [False, True])
def test_code_lines_are_as_written(colour: bool) -> None:
    lines = render(DOCUMENT, colour=colour)
    start = lines.index("def main():")
    assert lines[start : start + 3] == ["def main():", "    if True:", "        return 1"]
    assert "indented code" in lines
    # In a list item the item's indentation stays, and nothing follows the code.
    assert "   make check" in lines
    assert [line for line in lines if line.startswith(" 1 ") or line.startswith(" 2 ")] == [
        " 1 Then:",
        " 2 Done.",
    ]


def test_code_keeps_its_colours_with_no_background() -> None:
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=True, color_system="standard")
    console.print(PastableMarkdown("```python\ndef f(): pass\n```", code_theme=CODE_THEME))
    assert re.search(r"\x1b\[[39][0-7];49mdef", out.getvalue())
    assert "\x1b[4" not in out.getvalue().replace("\x1b[49m", "").replace(";49m", "")


def test_a_line_wider_than_the_screen_folds_without_padding() -> None:
    lines = render("```\n" + "x" * 50 + "\n```", colour=False, width=30)
    assert [line for line in lines if line] == ["x" * 30, "x" * 20]
