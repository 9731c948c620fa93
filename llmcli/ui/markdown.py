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

List items (where models often put code) are drawn by rich padded to the width as well:
here their lines end at their last character too. Their indentation stays, as it is part
of how the list reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markdown import CodeBlock, ListItem, Markdown, MarkdownElement
from rich.segment import Segment
from rich.syntax import Syntax

__all__ = ["CODE_THEME", "PastableCodeBlock", "PastableListItem", "PastableMarkdown"]

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


class PastableListItem(ListItem):
    """A list item whose lines carry no spaces after their last character."""

    def render_bullet(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from _trim_lines(super().render_bullet(console, options))

    def render_number(
        self, console: Console, options: ConsoleOptions, number: int, last_number: int
    ) -> RenderResult:
        yield from _trim_lines(super().render_number(console, options, number, last_number))


class PastableMarkdown(Markdown):
    """``Markdown`` whose code blocks are :class:`PastableCodeBlock` and list items
    :class:`PastableListItem`."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements,
        "fence": PastableCodeBlock,
        "code_block": PastableCodeBlock,
        "list_item_open": PastableListItem,
    }


def _trim_lines(
    rendered: Iterable[RenderableType | Segment],
) -> Iterator[RenderableType | Segment]:
    """``rendered`` (segments, one ``"\\n"`` segment ending each line) with the spaces at
    the end of every line left out."""
    line: list[Segment] = []
    for item in rendered:
        if not isinstance(item, Segment):
            yield item
            continue
        if item.text == "\n":
            yield from _rstrip(line)
            yield item
            line = []
        else:
            line.append(item)
    yield from _rstrip(line)


def _rstrip(line: list[Segment]) -> list[Segment]:
    while line and not line[-1].control and not line[-1].text.rstrip(" "):
        line.pop()
    if line and not line[-1].control:
        last = line[-1]
        line[-1] = Segment(last.text.rstrip(" "), last.style, last.control)
    return line
