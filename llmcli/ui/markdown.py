"""rich's ``Markdown``, with code blocks that paste as they were written.

rich draws a code block as a panel: a one-cell margin on the left, every line padded with
spaces to the width of the screen (to paint the theme's background), and a padded blank
line above and below. Copied from the terminal, each line then carries a leading space
and a tail of trailing ones, which breaks Python, YAML, Makefiles and heredocs pasted
back. Here a code block is only its highlighted lines, each starting at the first column
and ending at its last character. The colours are the terminal's own ANSI palette
(``ansi_dark``, so they read on light and dark backgrounds alike, with no background to
paint). A line longer than the screen still folds where the screen ends; ``/copy N``
copies a block exactly, however long its lines.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Markdown, MarkdownElement
from rich.syntax import Syntax

__all__ = ["CODE_THEME", "PastableCodeBlock", "PastableMarkdown"]

CODE_THEME = "ansi_dark"


class PastableCodeBlock(CodeBlock):
    """A fenced or indented code block: highlighted lines, no margin, no padding."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        syntax = Syntax(code, self.lexer_name, theme=self.theme, background_color="default")
        text = syntax.highlight(code)
        text.rstrip()  # highlight() ends the text with a newline
        text.justify = "default"  # never padded to the width
        text.overflow = "fold"
        text.no_wrap = False
        yield text


class PastableMarkdown(Markdown):
    """``Markdown`` whose code blocks are :class:`PastableCodeBlock`."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements,
        "fence": PastableCodeBlock,
        "code_block": PastableCodeBlock,
    }
