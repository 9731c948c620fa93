"""Render a growing markdown answer: finished blocks once, the open tail live.

An answer streams in token by token. Re-rendering the whole document on every token
(``Live(Markdown(text_so_far))``) costs time proportional to the answer for each token,
so a long answer is quadratic, and the redrawn area grows past the screen. Instead:

* :class:`BlockSplitter` cuts the text into top-level markdown blocks as soon as each is
  *finished*, meaning no later text can change how it renders. It scans each new line once
  and keeps only the open block, so its cost per token does not grow with the answer.
* :class:`MarkdownStream` prints every finished block once, with rich's ``Markdown`` (whose
  code blocks paste as written: ``llmcli.ui.markdown``), into
  scrollback, and redraws only the open block (the *tail*) in a transient ``rich.live.Live``
  area below it.

Where a block is finished. The splitter reads lines the way a CommonMark parser does, but
it only has to find places where the document can be cut: a cut is made only where the
whole-document parse (markdown-it, which rich uses) certainly starts a new top-level
block after closed ones. Rendering each piece separately then gives the same output as
rendering the whole document. Whenever a case is unclear, the splitter makes no cut there
and the blocks on either side are rendered together, which is always safe. The rules:

* A blank line finishes the open block, unless it holds a list (a list may go on after
  blank lines), or its last line was indented by 4 or more (an indented code block may go
  on too). A line at column 0 after blank lines then finishes the open block, unless that
  line is a list item and the block holds a list. So a list, including an ordered list
  with its numbering, stays in one block until the text after it starts.
* A fenced code block (backticks or tildes, at least three, with an info string) is one
  block from its opening line to its closing fence line, whatever blank lines it holds. If
  the fence starts at the top level, the block ends at its closing fence and a new block
  starts at its opening line. HTML blocks of CommonMark types 1 to 5 (``<pre>``, ``<!--``
  and so on) are tracked the same way, and types 6 and 7 until the next blank line.
* ATX headings, thematic breaks and setext underlines finish the block at the end of
  their line.
* A table is finished like a paragraph, at a blank line. markdown-it's table rule looks
  one line ahead, so a line holding a ``|`` may still become a table's header: a heading
  holding one is not finished at its end, and a line of dashes under one is not taken
  for an underline.
* Indented lines never start a block, so they stay with the block before them.
* Inside a list, a fence opened on an item's own line (``1. ```bash``) ends with that
  item. A fence opened on a line of its own may belong to an item whose indentation the
  splitter does not track; if a line in it is indented less than its opening fence, it
  cannot tell whether the item (and the fence with it) ended there, so it makes no more
  cuts and the rest of the answer is printed when it finishes.

What cannot be the same: a link reference definition (``[x]: https://...``) applies only
inside its own block, so a reference used in another block stays literal text. Everything
else renders the same as rendering the whole document once; the tests check this on
hand-written answers and on random documents made of awkward fragments.

Spacing. rich's ``Markdown`` writes a blank line between top-level elements, except after
a thematic break, which draws its own, and decides it from state that lists, tables and
quotes set themselves. Rather than imitate that, a block that follows an element is
rendered behind an empty HTML comment, which renders nothing but leaves rich's state as
the element before it did in the whole document (see ``_render_block``). Blocks that make
no element at all (a lone link reference definition) are skipped.

How the live tail is bounded. The open block can be long: a 5,000-line code fence still
streaming, a long list or table, or one long paragraph line. Redrawing all of it on every
refresh would be quadratic again, and ``Live`` cannot draw above the top of the screen
anyway. So the tail is never rendered in full while it streams: the live area shows a
window of it, at most a screenful of the latest source lines, or a few thousand
characters (a fence keeps its opening line and a table its header, so the window still
renders like the block), cropped to the last rendered lines that fit the terminal. When
the block finishes, it is printed once, in full. This was chosen over printing the lines
of an open fence in chunks as they complete, for three reasons. Syntax highlighting of a
chunk would start over without the state at its first line, so a multi-line string or
comment cut by a chunk would be coloured wrongly. Printing the block once gives output
exactly equal to rendering the whole document. And one rule bounds every kind of block,
not only fences: an ordered list cannot be printed item by item, because rich sizes the
number column from how many items the list has in the end. The cost: lines above the
window of a block still streaming reach scrollback only when that block finishes.

Refresh. All redraws, and all printing of finished blocks, happen under one lock, so the
refresh thread and the feeding thread never write to the terminal at the same time.
The refresh thread redraws only when the tail has changed, at most ``refresh_per_second``
times a second, and waits longer when a redraw was slow (at least four times the last
redraw), so drawing takes at most about a fifth of the time whatever the token rate.
Rendering cost therefore grows neither with tokens per second nor with the answer.
With ``live=False``, or when the console is not an interactive terminal, there is no
``Live`` at all: finished blocks are printed as they complete and the tail at the end.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.text import Text

from llmcli.ui.markdown import CODE_THEME, PastableMarkdown

__all__ = ["BlockSplitter", "MarkdownStream"]

# Renders nothing; see _render_block.
_AFTER_ELEMENT = "<!-- -->\n\n"

# The most source characters the live window renders on one redraw (it is also held to
# the terminal's height). Highlighted code costs rich about 25 microseconds a character,
# so a redraw stays near 50 ms.
_PREVIEW_CHARS = 2_000
# An open block up to this size is rendered whole on each redraw, so the lines that no
# longer fit on the screen can be printed into scrollback as they scroll up. A larger one
# falls back to the window (prose renders at about 1 microsecond a character).
_WHOLE_BLOCK_CHARS = 16_000
_ORDERED_ITEM_RE = re.compile(r"[ \t]{0,3}\d{1,9}[.)](?:[ \t]|$)")

_FENCE_RE = re.compile(r"(`{3,}|~{3,})(.*)")
_ATX_RE = re.compile(r"#{1,6}(?:[ \t]|$)")
_BREAK_RE = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_UNDERLINE_RE = re.compile(r"(?:=+|-+)[ \t]*$")
_LIST_MARKER_RE = re.compile(r"(?:[-+*]|(\d{1,9})[.)])(?=[ \t]|$)")
# A line of only block quote and list item markers: it leaves no paragraph open.
_CONTAINER_MARKS_RE = re.compile(r"(?:>|[-+*](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$)|[ \t])+")
# A link reference definition on one line: label, destination and optional title.
_REFERENCE_RE = re.compile(
    r"""\[(?:[^\]\\]|\\.)+\]:[ \t]*(?:<[^<>]*>|[^\s<]\S*)"""
    r"""(?:[ \t]+(?:"[^"]*"|'[^']*'|\([^()]*\)))?[ \t]*$"""
)
_DELIMITER_CHARS_RE = re.compile(r"[-:|][-:| \t]*")
_DELIMITER_CELL_RE = re.compile(r":?-+:?")
_UNESCAPED_PIPE_RE = re.compile(r"(?<!\\)\|")

# CommonMark HTML blocks of types 1 to 5: start pattern and the end pattern that closes them.
_HTML_RAW_BLOCKS = (
    (
        re.compile(r"<(?:script|pre|style|textarea)(?:[ \t>]|$)", re.IGNORECASE),
        re.compile(r"</(?:script|pre|style|textarea)>", re.IGNORECASE),
    ),
    (re.compile(r"<!--"), re.compile(r"-->")),
    (re.compile(r"<\?"), re.compile(r"\?>")),
    (re.compile(r"<![A-Za-z]"), re.compile(r">")),
    (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>")),
)
# Type 6: the block-level tag names of the CommonMark spec. Ends at a blank line.
_HTML_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|"
    "details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|"
    "h1|h2|h3|h4|h5|h6|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|"
    "noframes|ol|optgroup|option|p|param|search|section|summary|table|tbody|td|tfoot|th|"
    "thead|title|tr|track|ul"
)
_HTML_BLOCK_RE = re.compile(rf"</?(?:{_HTML_BLOCK_TAGS})(?:[ \t]|/?>|$)", re.IGNORECASE)
# Type 7: a line holding one complete open or closing tag. Ends at a blank line.
_ATTRIBUTE_VALUE = r"""(?:[^"'=<>`\x00-\x20]+|'[^']*'|"[^"]*")"""
_ATTRIBUTE = rf"(?:[ \t]+[a-zA-Z_:][a-zA-Z0-9:._-]*(?:[ \t]*=[ \t]*{_ATTRIBUTE_VALUE})?)"
_HTML_TAG_LINE_RE = re.compile(
    rf"(?:<[A-Za-z][A-Za-z0-9-]*{_ATTRIBUTE}*[ \t]*/?>|</[A-Za-z][A-Za-z0-9-]*[ \t]*>)[ \t]*$"
)


def _measure(line: str) -> tuple[int, str]:
    """Return the indentation of `line` in columns (tab stops of 4) and the rest of it."""
    column = 0
    for index, char in enumerate(line):
        if char == " ":
            column += 1
        elif char == "\t":
            column += 4 - column % 4
        else:
            return column, line[index:]
    return column, ""


def _item_content(rest: str, column: int) -> tuple[int, str]:
    """Where the content of a list item line starts, past every list marker on the line."""
    while True:
        marker = _LIST_MARKER_RE.match(rest)
        if marker is None or _BREAK_RE.match(rest):
            return column, rest
        width = marker.end()
        spaces, content = _measure(rest[width:])
        if not content:
            return column + width + 1, ""
        if spaces > 4:  # the content is an indented code block
            return column + width + 1, " " * (spaces - 1) + content
        column += width + spaces
        rest = content


def _is_delimiter_row(rest: str, header: str) -> bool:
    """Whether `rest` is a table delimiter row that makes `header` a table's header row."""
    # markdown-it wants two characters at least, and no "- " that could start a list item.
    if len(rest) < 2 or rest.startswith(("- ", "-\t")) or not _DELIMITER_CHARS_RE.fullmatch(rest):
        return False
    cells = [cell.strip() for cell in rest.split("|")]
    if cells and not cells[-1]:
        cells.pop()
    if cells and not cells[0]:
        cells.pop(0)
    if not cells or not all(_DELIMITER_CELL_RE.fullmatch(cell) for cell in cells):
        return False
    columns = _UNESCAPED_PIPE_RE.split(header.strip())
    if columns and not columns[0].strip():
        columns.pop(0)
    if columns and not columns[-1].strip():
        columns.pop()
    return len(columns) == len(cells)


def _closes_fence(rest: str, fence: str) -> bool:
    """Whether a line (without indentation) is a closing fence for `fence`."""
    run = len(rest) - len(rest.lstrip(fence[0]))
    return run >= len(fence) and not rest[run:].strip(" \t")


def _suffix(text: str, size: int) -> str:
    """The last `size` characters of `text` or fewer, starting after a space if one is near."""
    space = text.find(" ", len(text) - size)
    return text[space + 1 :] if space >= 0 else text[-size:]


@dataclass(slots=True)
class _RawBlock:
    """A fenced code block or an HTML block that runs on until its end condition."""

    opener: str  # the opening line, kept so that a window of the block renders as one
    opener_index: int  # where the opening line is in the open block
    indent: int  # column of the opening fence or tag
    nested: bool  # opened at an indentation where it may belong to an earlier list item
    item_column: int | None  # opened on a list item's own line: that item's content column
    fence: str = ""  # the fence characters, for a fenced code block
    end: re.Pattern[str] | None = None  # the end pattern, for an HTML block of types 1-5
    until_blank: bool = False  # an HTML block of type 6 or 7, which ends at a blank line


class BlockSplitter:
    """Cut a growing markdown text into finished top-level blocks.

    ``feed`` takes the next piece of text and returns the blocks it finished, each as
    markdown source ending in a newline. ``tail`` is the text not yet finished, and
    ``finish`` returns it as the last block. The module docstring gives the rules.
    Each line is scanned once, when its newline arrives; nothing already finished is
    looked at again.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the open block, without newlines
        self._partial: list[str] = []  # pieces of the line still arriving
        self._pending_cr = False  # a CR at the end of the last piece; an LF may follow
        self._reset_block()

    def _reset_block(self) -> None:
        self._lines = []
        self._raw: _RawBlock | None = None
        # The last line opened a raw block but holds a "|": if a table delimiter row
        # follows, markdown-it's table rule, which comes first, makes it a table instead.
        self._header_candidate: str | None = None
        self._has_list = False  # the open block has a list item line at indent 0-3
        self._items: list[int] = []  # content columns of the list items still open
        self._after_blank = False
        self._last_indent = 0  # indentation of the last non-blank line
        self._paragraph_open = False  # the last line left a paragraph open, maybe in a list
        self._plain_paragraph = False  # the current run of lines is a plain paragraph
        self._in_table = False  # the current run of lines is a table
        self._unsure = False  # a list item's end could not be told; cut no more

    @property
    def tail(self) -> str:
        """The text of the open block, including the line still arriving."""
        return "".join(f"{line}\n" for line in self._lines) + "".join(self._partial)

    def feed(self, text: str) -> list[str]:
        """Append `text` and return the blocks it finished, in order."""
        if self._pending_cr:
            text = "\r" + text
            self._pending_cr = False
        if text.endswith("\r"):
            # A CR may be the first half of a CRLF split between two pieces.
            self._pending_cr = True
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        finished: list[str] = []
        start = 0
        newline = text.find("\n")
        while newline >= 0:
            line = text[start:newline]
            if self._partial:
                line = "".join(self._partial) + line
                self._partial = []
            self._take_line(line, finished)
            start = newline + 1
            newline = text.find("\n", start)
        if start < len(text):
            self._partial.append(text[start:])
        return finished

    def finish(self) -> list[str]:
        """The text is complete: return what is left as the last block, and start over."""
        if self._pending_cr:
            self._pending_cr = False
            self._partial.append("\n")
        partial = "".join(self._partial)
        self._partial = []
        finished = self.feed(partial + "\n") if partial else []
        self._emit(finished)
        return finished

    def has_tail(self) -> bool:
        """Whether any text is not finished yet."""
        return bool(self._lines or self._partial)

    def window(self, max_chars: int, max_lines: int) -> str:
        """The latest part of the tail, about `max_lines` lines or `max_chars` characters.

        This is what the live area shows. A window of an open fence starts with the fence's
        opening line and a window of a table with its header, so that it renders as the
        block will; a window of a list starts at a line that is not indented, if there is
        one, so that it starts at an item.
        """
        partial = "".join(self._partial)
        if len(partial) > max_chars:
            partial = _suffix(partial, max_chars)
        lines = self._lines
        budget = max_chars - len(partial)
        room = max_lines - 1 if partial else max_lines
        start = len(lines)
        while start > 0 and len(lines) - start < room:
            cost = len(lines[start - 1]) + 1
            if cost > budget:
                break
            budget -= cost
            start -= 1
        body = lines[start:]
        if not body and lines and budget > 0:
            # Not even the last line fits: show the end of it.
            start = len(lines) - 1
            body = [_suffix(lines[start], budget)]
        elif self._raw is None and 0 < start < len(lines):
            # Start at an item of a list rather than inside one.
            for index in range(start, len(lines)):
                indent, rest = _measure(lines[index])
                if rest and indent == 0:
                    start = index
                    body = lines[start:]
                    break
        head: list[str] = []
        raw = self._raw
        if raw is not None:
            if start > raw.opener_index:
                head = [raw.opener]
        elif start > 0 and len(lines) > 2 and _is_delimiter_row(lines[1].strip(), lines[0]):
            head = lines[: min(start, 2)]
        return "".join(f"{line}\n" for line in head + body) + partial

    def _emit(self, finished: list[str]) -> None:
        """Finish the open block: hand it to `finished` unless it is blank."""
        lines = self._lines
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            finished.append("".join(f"{line}\n" for line in lines))
        self._reset_block()

    def _take_line(self, line: str, finished: list[str]) -> None:
        """Add one complete line to the open block, finishing blocks where it allows."""
        indent, rest = _measure(line)
        header, self._header_candidate = self._header_candidate, None
        if header is not None and indent <= 3 and _is_delimiter_row(rest, header):
            self._raw = None  # the line before is a table's header row after all
            self._paragraph_open = True
            self._in_table = True
        raw = self._raw
        if raw is not None:
            if raw.item_column is not None and rest and indent < raw.item_column:
                # Less indented than the list item the block opened in: the item has
                # ended, and the block with it. The line belongs to what holds the list.
                self._raw = None
                self._paragraph_open = False
            elif raw.until_blank and not rest:
                self._raw = None
            else:
                self._lines.append(line)
                self._take_raw_line(raw, indent, rest, finished)
                return
        if not rest:
            self._take_blank_line(line, finished)
            return
        shallow = indent <= 3
        # At the top level unless it may be the content of a list item.
        top = indent == 0 or (shallow and not self._has_list)
        in_paragraph = self._paragraph_open
        # A paragraph at the top level, which an empty or not-1 list item cannot interrupt.
        top_paragraph = in_paragraph and self._plain_paragraph and not self._has_list
        is_break = shallow and _BREAK_RE.match(rest) is not None
        marker = None if is_break or not shallow else _LIST_MARKER_RE.match(rest)
        # A list item line whose item certainly starts there; the content of its line.
        item: tuple[int, str] | None = None
        if marker is not None:
            item = _item_content(rest, indent)
            number = marker.group(1)
            may_interrupt = bool(item[1]) and (number is None or int(number) == 1)
            if not may_interrupt and (top_paragraph or (in_paragraph and indent > 0)):
                item = None  # maybe a paragraph's continuation rather than a list item
        fence = _FENCE_RE.match(rest) if shallow else None
        if fence is not None and fence.group(1)[0] == "`" and "`" in fence.group(2):
            fence = None  # ``` followed by a backtick is inline code, not a fence
        if self._lines and not self._unsure:
            starts_block = indent == 0 and not (marker is not None and self._has_list)
            if (self._after_blank and starts_block) or (fence is not None and top):
                self._emit(finished)
        new_run = not self._lines or self._after_blank
        previous = "" if new_run else self._lines[-1]
        self._lines.append(line)
        self._after_blank = False
        self._last_indent = indent
        self._paragraph_open = False
        if new_run:
            self._plain_paragraph = False
            self._in_table = False
        can_finish = top and not self._unsure
        if not in_paragraph or item is not None:
            # Items whose content this line is not indented enough for have ended; a
            # paragraph's lazy continuation line does not end them.
            while self._items and self._items[-1] > indent:
                self._items.pop()
        if item is not None:
            self._has_list = True
            column, content = item
            self._items.append(column)
            if self._open_raw(line, content, column, nested=True, item_column=column):
                return
        elif shallow and self._open_raw(
            line, rest, indent, nested=not top, item_column=None, in_paragraph=in_paragraph
        ):
            return
        if shallow and "|" in previous and _is_delimiter_row(rest, previous):
            self._in_table = True  # the line before is the header row of a table
            self._paragraph_open = True
            self._plain_paragraph = False
            return
        if shallow and _ATX_RE.match(rest):
            # A "|" in it would make it a table's header if a delimiter row followed.
            if can_finish and "|" not in rest:
                self._emit(finished)
            return
        # A setext heading's underline, except that markdown-it takes an underline that is
        # not indented as lazy text of a paragraph inside a list.
        underline = shallow and not new_run and _UNDERLINE_RE.match(rest) is not None
        lazy = self._has_list and indent == 0
        if underline and in_paragraph and self._plain_paragraph and not lazy:
            if can_finish and not self._has_list:
                self._emit(finished)
            return
        if is_break:
            if can_finish:
                self._emit(finished)
            return
        if marker is not None:
            # Even a list item that is maybe a paragraph's continuation counts: a list
            # only makes the splitter cut later.
            self._has_list = True
        if marker is not None and item is None:
            self._paragraph_open = in_paragraph  # a paragraph's continuation
        elif not shallow:
            # A paragraph's lazy continuation, or a paragraph in a list item, unless the
            # line is indented code, at the top level or inside the item holding it.
            inner = self._items[-1] if self._items else 0
            self._paragraph_open = in_paragraph or (bool(self._items) and indent - inner < 4)
        else:
            self._paragraph_open = _CONTAINER_MARKS_RE.fullmatch(rest) is None
            if not in_paragraph and _REFERENCE_RE.match(rest):
                self._paragraph_open = False  # a link reference definition, not a paragraph
        # A link reference definition may go on over the next lines, so a run starting
        # with one is not taken for a paragraph that a setext underline could end.
        plain = marker is None and rest[0] != ">" and not self._in_table
        if new_run:
            plain = plain and shallow and self._paragraph_open and not rest.startswith("[")
            self._plain_paragraph = plain
        else:
            self._plain_paragraph = self._plain_paragraph and plain

    def _open_raw(
        self,
        line: str,
        content: str,
        column: int,
        *,
        nested: bool,
        item_column: int | None,
        in_paragraph: bool = False,
    ) -> bool:
        """Open a fenced code block or HTML block if `content` starts one."""
        raw = _RawBlock(
            opener=line,
            opener_index=len(self._lines) - 1,
            indent=column,
            nested=nested,
            item_column=item_column,
        )
        fence = _FENCE_RE.match(content)
        if fence is not None and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            raw.fence = fence.group(1)
        elif content.startswith("<"):
            for start, end in _HTML_RAW_BLOCKS:
                if start.match(content):
                    if end.search(content):
                        return True  # a one-line HTML block
                    raw.end = end
                    break
            else:
                # Type 7 cannot interrupt a paragraph.
                if not (
                    _HTML_BLOCK_RE.match(content)
                    or (not in_paragraph and _HTML_TAG_LINE_RE.match(content))
                ):
                    return False
                raw.until_blank = True
        else:
            return False
        self._raw = raw
        if "|" in line:
            self._header_candidate = line
        return True

    def _take_blank_line(self, line: str, finished: list[str]) -> None:
        self._paragraph_open = False
        self._plain_paragraph = False
        self._in_table = False
        if not self._lines:
            return  # blank lines between blocks carry nothing
        if not self._has_list and self._last_indent < 4 and not self._unsure:
            self._emit(finished)
            return
        self._lines.append(line)
        self._after_blank = True

    def _take_raw_line(self, raw: _RawBlock, indent: int, rest: str, finished: list[str]) -> None:
        if raw.nested and raw.item_column is None and rest and indent < raw.indent:
            # Less indented than the opening line: the list item holding this block may
            # have ended here, which would end the block too. Without tracking list items
            # this cannot be told, so make no more cuts in this answer.
            self._unsure = True
        self._last_indent = indent if rest else self._last_indent
        if raw.until_blank:
            return
        if raw.end is not None:
            closed = raw.end.search(rest) is not None
        elif raw.item_column is not None:
            low = raw.item_column
            closed = low <= indent <= low + 3 and _closes_fence(rest, raw.fence)
        else:
            closed = indent <= 3 and _closes_fence(rest, raw.fence)
            if raw.nested and indent < raw.indent:
                closed = False
            ambiguous = raw.nested and 3 < indent <= raw.indent + 3
            if not closed and ambiguous and _closes_fence(rest, raw.fence):
                self._unsure = True  # closes the fence only if the list item is shallow
        if not closed:
            return
        self._raw = None
        if not raw.nested and not self._unsure:
            self._emit(finished)


class _LiveTail:
    """The renderable shown in the live area: a window of the open block.

    It renders at most the latest source the splitter's window gives, keeps only the
    rendered lines that fit above the cursor, and reuses its last rendering when nothing
    has changed. While ``hidden`` it renders nothing.
    """

    def __init__(self, source: Callable[[int, int], tuple[str, bool]], code_theme: str) -> None:
        self._source = source  # (max_chars, max_lines) -> (markdown, blank line first)
        self._code_theme = code_theme
        self._key: tuple[str, bool, int, int] | None = None
        self._lines: list[list[Segment]] = []
        self.hidden = False
        # Set while the open block is rendered whole (see MarkdownStream._settle): its
        # rendered lines not yet printed into scrollback, shown instead of the window.
        self.whole: list[list[Segment]] | None = None
        # The cell width of each line last drawn, and the screen width then (for reflow).
        self.drawn: list[int] = []
        self.drawn_at = 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self.drawn = []
        self.drawn_at = options.max_width
        if self.hidden:
            return
        room = max(1, options.size.height - 1)
        shown = self.whole[-room:] if self.whole is not None else self._window(console, options)
        for line in shown:
            self.drawn.append(Segment.get_line_length(line))
            yield from line
            yield Segment.line()

    def _window(self, console: Console, options: ConsoleOptions) -> list[list[Segment]]:
        room = max(1, options.size.height - 1)
        max_chars = min(options.max_width * room, _PREVIEW_CHARS)
        markdown, separate = self._source(max_chars, room)
        key = (markdown, separate, options.max_width, room)
        if key != self._key:
            self._key = key
            self._lines = []
            if markdown.strip():
                rendered = _render_block(markdown, self._code_theme, after_element=separate)
                self._lines = console.render_lines(rendered, options, pad=False)[-room:]
        return self._lines

    def rows_after_reflow(self, width: int, height: int) -> int:
        """How many rows the last drawing takes once the terminal has re-wrapped it to a
        narrower ``width`` (terminals such as tmux, VTE, kitty and iTerm2 do); ``height``
        is the rows it took when drawn."""
        if not self.drawn or width >= self.drawn_at or width < 1:
            return height
        extra = sum(max(1, -(-cells // width)) - 1 for cells in self.drawn)
        return height + extra


class MarkdownStream:
    """Renders a growing markdown text: finished blocks once, the open tail live.

    Feed it the answer as it arrives and call ``finish`` at the end, or ``abort`` when the
    stream stops early; or use it as a context manager, which finishes on a normal exit and
    aborts on an exception (noting ``[interrupted]`` for Ctrl-C). With ``live=True`` on an
    interactive terminal the open block is redrawn in a transient live area, from a
    background thread, at most ``refresh_per_second`` times a second. Pass
    ``auto_refresh=False`` to redraw only when ``refresh`` is called (tests do). While it
    streams, everything written to `console` should go through this object, from one
    thread, and no other ``Live`` should be active on `console`.
    """

    def __init__(
        self,
        console: Console,
        *,
        code_theme: str = CODE_THEME,
        refresh_per_second: float = 8,
        live: bool = True,
        auto_refresh: bool = True,
    ) -> None:
        if refresh_per_second <= 0:
            raise ValueError("refresh_per_second must be positive")
        self._console = console
        self._code_theme = code_theme
        self._interval = 1.0 / refresh_per_second
        self._auto_refresh = auto_refresh
        self._use_live = (
            live and console.is_terminal and console.is_interactive and not console.is_dumb_terminal
        )
        self._splitter = BlockSplitter()
        self._lock = threading.Lock()  # held while the splitter changes or anything is drawn
        self._separate = False  # an element was printed, and it was no thematic break
        self._dirty = False  # the tail changed since the live area was last drawn
        self._closed = False
        self._live: Live | None = None
        self._tail = _LiveTail(self._tail_source, code_theme)
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        # Rendered lines of the open block already printed into scrollback, and the width
        # they were rendered at (see _settle).
        self._committed = 0
        self._committed_width = 0

    def __enter__(self) -> MarkdownStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.abort("[interrupted]")
        else:
            self.abort()

    def feed(self, text: str) -> None:
        """Append `text` (already neutralised by the caller) to the answer."""
        if self._closed:
            raise RuntimeError("MarkdownStream.feed() called after finish() or abort()")
        if not text:
            return
        with self._lock:
            self._print_blocks(self._splitter.feed(text))
            if self._use_live and self._splitter.has_tail():
                self._dirty = True
                if self._live is None:
                    self._start_live()

    def refresh(self) -> None:
        """Redraw the live area now."""
        with self._lock:
            if self._live is not None:
                self._dirty = False
                self._settle()
                self._live.refresh()

    def finish(self) -> None:
        """The answer is complete: print the tail as final blocks and stop the live area."""
        self._close(None)

    def abort(self, note: str | None = None) -> None:
        """The stream stopped early: print what arrived as final, then `note` dimmed."""
        self._close(note)

    def _close(self, note: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join()  # outside the lock, which the refresher may be waiting for
            self._refresher = None
        with self._lock:
            blocks = self._splitter.finish()
            if self._live is not None:
                self._allow_for_reflow()
                live, self._live = self._live, None
                live.stop()  # transient: clears the live area, so the tail is not doubled
            self._print_blocks(blocks)
            if note:
                self._console.print(Text(note, style="dim"))

    def _start_live(self) -> None:
        self._live = Live(
            self._tail,
            console=self._console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        )
        self._live.start(refresh=True)
        self._dirty = False
        if self._auto_refresh:
            self._refresher = threading.Thread(
                target=self._refresh_loop, name="mdstream-refresh", daemon=True
            )
            self._refresher.start()

    def _refresh_loop(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            wait = self._interval
            with self._lock:
                if self._live is None or not self._dirty:
                    continue
                self._dirty = False
                started = time.perf_counter()
                self._settle()
                self._live.refresh()
                # A slow redraw (a big terminal full of highlighted code) waits longer, so
                # drawing never takes more than about a fifth of the time.
                wait = max(self._interval, 4 * (time.perf_counter() - started))

    def _allow_for_reflow(self) -> None:
        """Before the live area is redrawn or cleared: if the screen got narrower since it
        was drawn, the terminal has re-wrapped its lines into more rows, and ``Live`` would
        move up too few of them, leaving a broken copy above the redraw. Tell it how many
        rows the drawing takes now (rich keeps that as its render's ``_shape``)."""
        render = getattr(self._live, "_live_render", None)
        shape = getattr(render, "_shape", None)
        if render is None or shape is None:
            return
        rows = self._tail.rows_after_reflow(self._console.width, shape[1])
        if rows != shape[1]:
            render._shape = (shape[0], rows)

    def _settle(self) -> None:
        """Print into scrollback the open block's lines that no longer fit on the screen.

        A block taller than the screen would otherwise lose its top while it streams:
        ``Live`` can only redraw what is on the screen. So, while the open block is small
        enough to render whole and its rendered lines cannot change as text is added (not
        a table, whose columns widen, nor an ordered list, whose numbers do), the lines
        above the live area are printed once, in order, and the block's final print skips
        them. Called with the lock held, before a redraw.
        """
        assert self._live is not None
        self._allow_for_reflow()
        source = self._splitter.tail
        width = self._console.width
        if self._committed and width != self._committed_width:
            # The screen changed width: lines printed at the old one cannot be re-cut.
            self._tail.whole = None
            return
        if not _prefix_stable(source) or len(source) > _WHOLE_BLOCK_CHARS:
            self._tail.whole = None
            return
        rendered = _render_block(source, self._code_theme, after_element=self._separate)
        # Unpadded: a line filled to the last column leaves the cursor waiting to wrap,
        # and a terminal that re-wraps it on a resize puts the cursor a row further down.
        lines = self._console.render_lines(rendered, self._console.options, pad=False)
        room = max(1, self._console.height - 1)
        overflow = len(lines) - self._committed - room
        if overflow > 0:
            self._tail.whole = lines[self._committed + overflow :]
            self._print_lines(lines[self._committed : self._committed + overflow])
            self._committed += overflow
            self._committed_width = width
        else:
            self._tail.whole = lines[self._committed :]

    def _print_lines(self, lines: list[list[Segment]]) -> None:
        self._tail.hidden = True
        try:
            self._console.print(_Lines(lines))
        finally:
            self._tail.hidden = False

    def _tail_source(self, max_chars: int, max_lines: int) -> tuple[str, bool]:
        """What the live area shows; called while the lock is held by whoever draws."""
        return self._splitter.window(max_chars, max_lines), self._separate

    def _print_blocks(self, blocks: list[str]) -> None:
        """Print finished blocks, spaced as rich spaces the elements of one document."""
        renderables: list[RenderableType] = []
        for block in blocks:
            markdown = _render_block(block, self._code_theme, after_element=self._separate)
            tokens = markdown.parsed[1:] if self._separate else markdown.parsed
            if not tokens:
                continue  # e.g. a lone link reference definition: no element at all
            if self._committed:
                # Its first lines are in scrollback already (_settle): print the rest.
                lines = self._console.render_lines(markdown, self._console.options, pad=False)
                renderables.append(_Lines(lines[self._committed :]))
                self._committed = 0
                self._tail.whole = None
            else:
                renderables.append(markdown)
            self._separate = tokens[-1].type != "hr"
        if not renderables:
            return
        if self._live is None:
            self._console.print(*renderables)
            return
        # Live redraws the tail under whatever is printed. Just now the tail is mostly the
        # first word of the next block; it waits for the next refresh instead, which spares
        # a render of it for every block.
        self._tail.hidden = True
        try:
            self._console.print(*renderables)
        finally:
            self._tail.hidden = False
        self._dirty = True


class _Lines:
    """Lines rendered already, printed as they are."""

    def __init__(self, lines: list[list[Segment]]) -> None:
        self._lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self._lines:
            yield from line
            yield Segment.line()


def _prefix_stable(source: str) -> bool:
    """Do the rendered lines of this open block stay as they are when text is added?

    Not for a table (a longer cell widens its column, re-laying every row) nor an ordered
    list (rich sizes the number column from the last number). Prose, code, quotes and
    bullet lists only grow downwards.
    """
    if not source.strip() or "|" in source:
        return False
    first = source.lstrip("\n").split("\n", 1)[0]
    return _ORDERED_ITEM_RE.match(first) is None and "\n1. " not in source


def _render_block(block: str, code_theme: str, *, after_element: bool) -> PastableMarkdown:
    """A ``Markdown`` for `block` that renders as it would inside the whole document.

    rich's ``Markdown`` writes a blank line before an element when the element closed
    before it asks for one: every element does except a thematic break (which draws its
    own), and the first element of a document has none before it, unless it is a list,
    table or quote, which ask for one themselves. A block that follows an element in the
    document is therefore rendered behind an empty HTML comment block: it renders nothing,
    but leaves that state set, as the element before did in the whole document. Its token
    is the first of ``parsed``.
    """
    source = _AFTER_ELEMENT + block if after_element else block
    return PastableMarkdown(source, code_theme=code_theme)
