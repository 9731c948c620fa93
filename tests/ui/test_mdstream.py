"""Tests for llmcli.ui.mdstream: the block splitter, rendering equivalence, the live tail."""

from __future__ import annotations

import io
import random
import re

import pytest
from rich.console import Console

from llmcli.ui.markdown import PastableMarkdown
from llmcli.ui.mdstream import BlockSplitter, MarkdownStream

# --- helpers -------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\s*[^\s]{1,8}|\s+")


def tokens_of(text: str) -> list[str]:
    """Split like the benchmark: whitespace plus up to 8 other characters."""
    tokens = _TOKEN_RE.findall(text)
    assert "".join(tokens) == text
    return tokens


def split_all(pieces: list[str]) -> list[str]:
    splitter = BlockSplitter()
    blocks = [block for piece in pieces for block in splitter.feed(piece)]
    return blocks + splitter.finish()


def random_pieces(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(text):
        size = rng.randint(1, 12)
        pieces.append(text[start : start + size])
        start += size
    return pieces


def plain_console(width: int = 80) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)


def output_of(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def normalise(text: str) -> str:
    """Drop trailing whitespace of each line and trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def render_whole(text: str, console: Console | None = None) -> str:
    console = console or plain_console()
    console.print(PastableMarkdown(text, code_theme="ansi_dark"))
    return output_of(console)


def render_streamed(pieces: list[str], console: Console | None = None) -> str:
    console = console or plain_console()
    stream = MarkdownStream(console, live=False)
    for piece in pieces:
        stream.feed(piece)
    stream.finish()
    return output_of(console)


_CSI_RE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")
_OSC_RE = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(raw: str) -> str:
    return _CSI_RE.sub("", _OSC_RE.sub("", raw))


def emulate_terminal(raw: str) -> list[str]:
    """Replay what a terminal would do with `raw`; return every line it ends up holding.

    Handles what rich's Live writes: text, CR, LF, cursor up, erase line; colours, cursor
    visibility and hyperlinks are ignored. Lines scrolled off the top are kept, so the
    result is the scrollback plus the screen.
    """
    raw = _OSC_RE.sub("", raw)
    lines: list[list[str]] = [[]]
    row = column = 0
    position = 0
    while position < len(raw):
        char = raw[position]
        if char == "\x1b":
            match = _CSI_RE.match(raw, position)
            assert match is not None, repr(raw[position : position + 12])
            argument, command = match.groups()
            if command == "A":
                row = max(0, row - int(argument or "1"))
            elif command == "K":
                assert argument == "2", "only whole-line erase is expected"
                lines[row] = []
            position = match.end()
            continue
        if char == "\r":
            column = 0
        elif char == "\n":
            row += 1
            column = 0
            if row == len(lines):
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (column - len(line)))
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
        position += 1
    return ["".join(line).rstrip() for line in lines]


# --- block splitter: table of cases --------------------------------------------------

SPLIT_CASES: list[tuple[str, str, list[str]]] = [
    ("paragraphs", "One line.\n\nTwo\nlines.\n", ["One line.\n", "Two\nlines.\n"]),
    ("blank lines between", "A.\n\n\n\nB.\n", ["A.\n", "B.\n"]),
    ("atx heading", "# Title\nText under it.\n", ["# Title\n", "Text under it.\n"]),
    (
        "heading after paragraph",
        "Para\n## Sub\nMore\n",
        ["Para\n## Sub\n", "More\n"],
    ),
    ("setext heading", "Title\n=====\nText\n", ["Title\n=====\n", "Text\n"]),
    ("thematic break", "A\n\n---\n\nB\n", ["A\n", "---\n", "B\n"]),
    ("break after list", "- a\n***\nB\n", ["- a\n***\n", "B\n"]),
    (
        "backtick fence with blank lines",
        "```python\nx = 1\n\n\ny = 2\n```\nAfter.\n",
        ["```python\nx = 1\n\n\ny = 2\n```\n", "After.\n"],
    ),
    (
        "tilde fence holding a backtick fence",
        "~~~\n```\ncode\n```\n\n~~~\nAfter.\n",
        ["~~~\n```\ncode\n```\n\n~~~\n", "After.\n"],
    ),
    (
        "longer fence holding a shorter one",
        "````md\n```js\nx\n```\n\nmore\n````\n",
        ["````md\n```js\nx\n```\n\nmore\n````\n"],
    ),
    ("fence interrupting a paragraph", "Run:\n```sh\nls\n```\n", ["Run:\n", "```sh\nls\n```\n"]),
    ("fence closed by a longer fence", "```\na\n`````\nB\n", ["```\na\n`````\n", "B\n"]),
    ("inline code is no fence", "```a``` b\n\nc\n", ["```a``` b\n", "c\n"]),
    ("unclosed fence at the end", "```\ncode\n\nmore code", ["```\ncode\n\nmore code\n"]),
    (
        "bullet list",
        "- a\n- b\n  - nested\n- c\n\nAfter.\n",
        ["- a\n- b\n  - nested\n- c\n", "After.\n"],
    ),
    (
        "loose list stays one block",
        "- a\n\n- b\n\n  still b\n\nAfter.\n",
        ["- a\n\n- b\n\n  still b\n", "After.\n"],
    ),
    (
        "ordered list stays one block",
        "1. one\n\n2. two\n\n3. three\n\nAfter.\n",
        ["1. one\n\n2. two\n\n3. three\n", "After.\n"],
    ),
    (
        "fence inside a list item",
        "1. Install:\n   ```bash\n   pip install x\n\n   ```\n2. Run it.\n\nDone.\n",
        ["1. Install:\n   ```bash\n   pip install x\n\n   ```\n2. Run it.\n", "Done.\n"],
    ),
    (
        "fence opened on the item line",
        "- ```\n  a\n\n  b\n  ```\n- next\n\nDone.\n",
        ["- ```\n  a\n\n  b\n  ```\n- next\n", "Done.\n"],
    ),
    (
        "unindented fence ends a list",
        "1. Step:\n```sh\nls\n```\n2. Step two\n",
        ["1. Step:\n", "```sh\nls\n```\n", "2. Step two\n"],
    ),
    (
        "table",
        "| a | b |\n|---|---:|\n| 1 | 2 |\n\nAfter.\n",
        ["| a | b |\n|---|---:|\n| 1 | 2 |\n", "After.\n"],
    ),
    (
        "dashes under a pipe row make a table, not a heading",
        "| a |\n---\n| 1 |\n",
        ["| a |\n---\n| 1 |\n"],
    ),
    (
        "a heading holding a pipe waits for the next line",
        "# a | b\n--|--\nc | d\n",
        ["# a | b\n--|--\nc | d\n"],
    ),
    (
        "blockquotes",
        "> a\n> b\n\n> c\nlazy\n\nAfter.\n",
        ["> a\n> b\n", "> c\nlazy\n", "After.\n"],
    ),
    (
        "indented code over blank lines",
        "    code\n\n    more\n\nAfter.\n",
        ["    code\n\n    more\n", "After.\n"],
    ),
    (
        "html block ends at a blank line",
        "<details>\n<summary>S</summary>\n\nBody\n\n</details>\n",
        ["<details>\n<summary>S</summary>\n", "Body\n", "</details>\n"],
    ),
    (
        "html comment runs over blank lines",
        "<!--\n\nhidden\n\n-->\nAfter.\n",
        ["<!--\n\nhidden\n\n-->\n", "After.\n"],
    ),
    ("crlf line ends", "a\r\n\r\nb\r\n", ["a\n", "b\n"]),
    ("lone cr line ends", "a\r\rb\r", ["a\n", "b\n"]),
    ("no newline at the end", "a\n\nb", ["a\n", "b\n"]),
    ("only blank lines", "\n\n  \n", []),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES]
)
def test_splitter_blocks(text: str, expected: list[str]) -> None:
    assert split_all([text]) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in SPLIT_CASES], ids=[c[0] for c in SPLIT_CASES]
)
def test_splitter_ignores_how_text_is_chunked(text: str, expected: list[str]) -> None:
    for cut in range(len(text) + 1):
        assert split_all([text[:cut], text[cut:]]) == expected, cut
    assert split_all(list(text)) == expected
    for seed in range(5):
        assert split_all(random_pieces(text, seed)) == expected


@pytest.mark.parametrize(
    ("pieces", "finished", "tail"),
    [
        (["# Title"], [[]], "# Title"),
        (["# Title\n"], [["# Title\n"]], ""),
        (["Para\n", "\n"], [[], ["Para\n"]], ""),
        (["- a\n", "\n"], [[], []], "- a\n\n"),  # a list may go on after a blank line
        (["- a\n\n", "b"], [[], []], "- a\n\nb"),
        (["- a\n\n", "b\n"], [[], ["- a\n"]], "b\n"),
        (["```\n", "x\n\n", "```\n"], [[], [], ["```\nx\n\n```\n"]], ""),
        (["Para\n```\n"], [["Para\n"]], "```\n"),
    ],
)
def test_splitter_finishes_blocks_as_early_as_it_can(
    pieces: list[str], finished: list[list[str]], tail: str
) -> None:
    splitter = BlockSplitter()
    assert [splitter.feed(piece) for piece in pieces] == finished
    assert splitter.tail == tail


def test_splitter_keeps_only_the_open_block() -> None:
    splitter = BlockSplitter()
    for number in range(2_000):
        splitter.feed(f"Paragraph {number} has a few words.\n\n")
    splitter.feed("Open")
    assert splitter.tail == "Open"


def test_window_of_a_long_open_fence_is_bounded_and_keeps_the_opener() -> None:
    splitter = BlockSplitter()
    splitter.feed("```python\n" + "".join(f"x_{n} = {n}\n" for n in range(5_000)) + "y = ")
    window = splitter.window(max_chars=2_000, max_lines=24)
    lines = window.split("\n")
    assert lines[0] == "```python"
    assert lines[1:] == [f"x_{n} = {n}" for n in range(4_977, 5_000)] + ["y = "]
    assert len(window) < 2_100


def test_window_of_a_long_table_keeps_its_header() -> None:
    splitter = BlockSplitter()
    splitter.feed("| a | b |\n|---|---|\n" + "".join(f"| {n} | {n} |\n" for n in range(100)))
    lines = splitter.window(max_chars=2_000, max_lines=10).split("\n")
    assert lines[:2] == ["| a | b |", "|---|---|"]
    assert lines[-2] == "| 99 | 99 |"
    assert len(lines) == 2 + 10 + 1


def test_window_of_a_long_list_starts_at_an_item() -> None:
    splitter = BlockSplitter()
    splitter.feed("".join(f"{n}. item\n   more about {n}\n" for n in range(1, 60)))
    window = splitter.window(max_chars=2_000, max_lines=9)
    assert window.startswith("56. item\n")


def test_window_of_one_long_line_shows_its_end() -> None:
    splitter = BlockSplitter()
    splitter.feed("word " * 10_000)
    window = splitter.window(max_chars=100, max_lines=24)
    assert 90 <= len(window) <= 100
    assert window.startswith("word")


# --- rendering equivalence -----------------------------------------------------------

SAMPLES = {
    "answer": """\
# Streaming markdown

The client reads **server-sent events** and prints `content` deltas as they
arrive. A paragraph with a [link](https://example.com) and *emphasis*.

## Steps

1. Install the package:
   ```bash
   pip install llmcli
   ```
2. Set the key:

   ```bash
   export ZEN_API_KEY=...
   ```

3. Run a prompt.

- Bullet one
- Bullet two
  - nested **bold**
  - nested `code`
- Bullet three

```python
def fold(events: list[str]) -> int:
    \"\"\"Count characters.

    A docstring over several lines.
    \"\"\"
    total = 0

    for event in events:
        total += len(event)
    return total
```

| backend | tokens/s | first token |
|---|---:|:---:|
| zen | 80 | 300 ms |
| llama-server | 42 | 90 ms |

> A quote that goes
> over two lines.
>
> - with a list

---

Done. Setext title
------------------
""",
    "long ordered list": "".join(f"{n}. Item number {n} of the list\n" for n in range(1, 13))
    + "\nAfter the list.\n",
    "loose bullet list": "- a\n\n- b\n\n  continued\n\n- c\n\nEnd.\n",
    "fences": "~~~\n```\nnot closed by this\n```\n~~~\n\n````\n```\n````\n\n```\nunclosed\n\nstill",
    "starts with a table": "| a |\n|---|\n| 1 |\n\nText\n",
    "starts with a list": "- a\n- b\n\n# H\n",
    "breaks": "---\n\n***\n\nText\n\n___\n",
    "html and a lone reference definition": (
        "<details>\n<summary>More</summary>\n\nHidden text.\n\n</details>\n\n"
        "[unused]: https://example.com\n\nAfter.\n"
    ),
    "image": "Text\n\n![diagram](d.png) caption\n\n![alone](a.png)\n\nEnd\n",
    "indented code and quote": "Para\n\n    code\n\n    more\n\n> q\n\nEnd",
    "no trailing newline": "Just one paragraph, no newline",
    "empty": "",
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_streamed_render_equals_whole_render(name: str) -> None:
    text = SAMPLES[name]
    whole = normalise(render_whole(text))
    assert normalise(render_streamed(tokens_of(text))) == whole
    assert normalise(render_streamed(list(text))) == whole
    assert normalise(render_streamed([text])) == whole


def test_streamed_render_keeps_colours_and_highlighting() -> None:
    def console() -> Console:
        return Console(file=io.StringIO(), width=80, force_terminal=True, color_system="truecolor")

    def without_link_ids(text: str) -> str:
        return re.sub(r"id=\d+;", "id=;", text)  # rich numbers hyperlinks at random

    text = SAMPLES["answer"]
    whole = without_link_ids(render_whole(text, console()))
    assert without_link_ids(render_streamed(tokens_of(text), console())) == whole
    # Highlighted code, in the terminal's own colours, on its own background.
    assert re.search(r"\x1b\[[39][0-7];49m", whole)


def test_streamed_render_on_random_documents() -> None:
    """Documents built from awkward fragments render the same streamed as whole."""
    starts = [
        *["", "", "- ", "* ", "1. ", "2) ", "> ", "```", "```py", "~~~", "# ", "---"],
        *["***", "===", "-", "| a | b |", "|---|---|", "<div>", "</div>", "<span>"],
        *["<!--", "-->", "<pre>", "    ", "> - ", "- > ", "1. ```", "[R]: /u"],
    ]
    words = ["text", "`code`", "**b**", "|", "```", "a | b", "-->", "~~~", "![i](x)"]
    indents = ["", "", "", " ", "  ", "   ", "    ", "\t"]
    rng = random.Random(20240601)
    for _ in range(150):
        lines: list[str] = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.2:
                lines.append("")
                continue
            start = rng.choice(starts).replace("[R]", f"[r{len(lines)}]")
            tail = " ".join(rng.choice(words) for _ in range(rng.randint(0, 3)))
            lines.append(rng.choice(indents) + start + tail)
        text = "\n".join(lines) + rng.choice(["", "\n", "\n\n"])
        whole = normalise(render_whole(text, plain_console(60)))
        for pieces in ([text], list(text), random_pieces(text, len(lines))):
            assert normalise(render_streamed(pieces, plain_console(60))) == whole, text


def test_link_reference_definitions_apply_only_in_their_block() -> None:
    """The one construct that cannot render the same: a definition printed later cannot
    change a block printed earlier. Streamed, the text renders as if the definition
    were absent (a lone definition renders nothing)."""
    text = "See [the docs][d].\n\n[d]: https://example.com/docs\n"
    streamed = normalise(render_streamed(tokens_of(text)))
    assert streamed == normalise(render_whole("See [the docs][d].\n"))
    assert "[the docs][d]" in streamed
    assert "[the docs][d]" not in render_whole(text)


# --- finish, abort, context manager --------------------------------------------------


def test_abort_keeps_partial_text_and_prints_the_note() -> None:
    console = plain_console()
    stream = MarkdownStream(console, live=False)
    stream.feed("First paragraph.\n\nHalf of a **second")
    stream.abort("[interrupted]")
    lines = normalise(output_of(console)).split("\n")
    assert lines == ["First paragraph.", "", "Half of a **second", "[interrupted]"]


def test_abort_without_a_note_prints_only_the_text() -> None:
    console = plain_console()
    stream = MarkdownStream(console, live=False)
    stream.feed("```python\nx = 1")
    stream.abort()
    assert "x = 1" in output_of(console)
    assert "interrupted" not in output_of(console)


def test_exception_inside_with_aborts_and_propagates() -> None:
    console = plain_console()
    stream = MarkdownStream(console, live=False)
    with pytest.raises(RuntimeError, match="backend went away"), stream:
        stream.feed("Partial answer")
        raise RuntimeError("backend went away")
    assert normalise(output_of(console)) == "Partial answer"


def test_ctrl_c_inside_with_notes_the_interruption() -> None:
    console = plain_console()
    with pytest.raises(KeyboardInterrupt), MarkdownStream(console, live=False) as stream:
        stream.feed("Partial answer")
        raise KeyboardInterrupt
    assert normalise(output_of(console)).split("\n") == ["Partial answer", "[interrupted]"]


def test_with_block_finishes_normally() -> None:
    console = plain_console()
    with MarkdownStream(console, live=False) as stream:
        stream.feed("# Done\n\ntext")
    assert normalise(output_of(console)) == normalise(render_whole("# Done\n\ntext"))


def test_finish_twice_is_harmless_and_feeding_after_it_is_a_bug() -> None:
    console = plain_console()
    stream = MarkdownStream(console, live=False)
    stream.feed("text")
    stream.finish()
    stream.finish()
    stream.abort("[interrupted]")
    assert normalise(output_of(console)) == "text"
    with pytest.raises(RuntimeError):
        stream.feed("more")


def test_refresh_per_second_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MarkdownStream(plain_console(), refresh_per_second=0)


def test_live_is_not_used_on_a_console_that_is_not_a_terminal() -> None:
    console = plain_console()
    stream = MarkdownStream(console, live=True)
    stream.feed("Para\n\nOpen tail")
    assert normalise(output_of(console)) == "Para"
    stream.finish()
    assert normalise(output_of(console)) == normalise(render_whole("Para\n\nOpen tail"))


# --- live tail -----------------------------------------------------------------------


def terminal_console(height: int = 25) -> Console:
    return Console(file=io.StringIO(), width=80, height=height, force_terminal=True)


def unique_sentence(number: int) -> str:
    return f"Sentence number {number} is unique"


LIVE_TEXT = "".join(
    f"## Part {n}\n\n{unique_sentence(n)} and long enough to wrap in a narrow terminal, "
    f"which makes the live area more than one line high.\n\n"
    f"- {unique_sentence(100 + n)}\n- another item\n\n"
    f"```python\nvalue_{n} = {n}  # {unique_sentence(200 + n)}\n```\n\n"
    for n in range(6)
)


def test_live_scrollback_holds_each_finished_block_once() -> None:
    console = terminal_console()
    stream = MarkdownStream(console, live=True, auto_refresh=False)
    for token in tokens_of(LIVE_TEXT):
        stream.feed(token)
        stream.refresh()  # the worst case: a redraw after every token
    stream.finish()
    raw = output_of(console)
    screen = emulate_terminal(raw)
    plain = strip_ansi(raw)
    for number in (*range(6), *range(100, 106), *range(200, 206)):
        sentence = unique_sentence(number)
        assert sum(sentence in line for line in screen) == 1, sentence
        assert plain.count(sentence) > 1  # the live area did draw it before it finished
    expected = normalise(render_whole(LIVE_TEXT)).split("\n")
    assert "\n".join(screen).rstrip("\n").split("\n") == expected
    assert raw.rfind("\x1b[?25h") > raw.rfind("\x1b[?25l")  # the live area is gone


def test_live_with_the_refresh_thread_ends_with_the_same_scrollback() -> None:
    console = terminal_console()
    with MarkdownStream(console, live=True, refresh_per_second=1_000) as stream:
        for token in tokens_of(LIVE_TEXT):
            stream.feed(token)
    screen = emulate_terminal(output_of(console))
    expected = normalise(render_whole(LIVE_TEXT)).split("\n")
    assert "\n".join(screen).rstrip("\n").split("\n") == expected


def test_live_abort_leaves_partial_text_and_note_in_scrollback() -> None:
    console = terminal_console()
    stream = MarkdownStream(console, live=True, auto_refresh=False)
    stream.feed("Done paragraph.\n\nHalf a sen")
    stream.refresh()
    stream.abort("[interrupted]")
    screen = [line for line in emulate_terminal(output_of(console)) if line]
    assert screen == ["Done paragraph.", "Half a sen", "[interrupted]"]


def test_live_redraw_of_a_huge_open_fence_fits_the_terminal() -> None:
    console = terminal_console(height=12)
    stream = MarkdownStream(console, live=True, auto_refresh=False)
    stream.feed("```python\n" + "".join(f"x_{n} = {n}\n" for n in range(5_000)))
    stream.refresh()
    file = console.file
    assert isinstance(file, io.StringIO)
    before = file.tell()
    stream.feed("y = 1\n")
    stream.refresh()
    redraw = strip_ansi(file.getvalue()[before:])
    assert redraw.count("\n") <= 12
    assert "x_4999 = 4999" in redraw
    assert "x_4000 = 4000" not in redraw
    stream.finish()
    screen = emulate_terminal(output_of(console))
    assert sum(line.strip().startswith("x_") for line in screen) == 5_000
