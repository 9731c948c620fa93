"""``/copy N``'s code blocks: fences as CommonMark reads them, table-driven."""

from __future__ import annotations

import pytest

from llmcli.chat.codeblocks import CodeBlock, code_blocks

CASES = {
    "none": ("Just words, and `inline code`.", []),
    "one": ("Run:\n\n```bash\nls -l\n```\n", [CodeBlock("bash", "ls -l")]),
    "two with text between": (
        "```python\nx = 1\n```\nthen\n~~~\ny = 2\n~~~",
        [CodeBlock("python", "x = 1"), CodeBlock("", "y = 2")],
    ),
    "info string words": (
        '```python title="a.py"\npass\n```',
        [CodeBlock('python title="a.py"', "pass")],
    ),
    "longer fence holds a shorter one": (
        "````markdown\n```js\nx()\n```\n````",
        [CodeBlock("markdown", "```js\nx()\n```")],
    ),
    "tilde fence holds backticks": ("~~~\n```\n~~~", [CodeBlock("", "```")]),
    "closing fence may be longer and end in spaces": ("```\na\n`````   \nb", [CodeBlock("", "a")]),
    "not closed by a shorter fence or one with words": (
        "````\na\n```\n```` no\nb\n````",
        [CodeBlock("", "a\n```\n```` no\nb")],
    ),
    # The first line is text, so the last one opens a block that never closes.
    "backtick info string with a backtick is no fence": (
        "```a`b\ncode\n```",
        [CodeBlock("", "", closed=False)],
    ),
    "blank lines and indentation kept": (
        "```\ndef f():\n\n    return 1\n```",
        [CodeBlock("", "def f():\n\n    return 1")],
    ),
    "in a list item: the fence's indentation comes off": (
        "1. Install:\n\n   ```sh\n   pip install x\n     --pre\n   ```\n",
        [CodeBlock("sh", "pip install x\n  --pre")],
    ),
    "unterminated (a cut answer) runs to the end": (
        "```py\nprint(1)\n\n",
        [CodeBlock("py", "print(1)", closed=False)],
    ),
    "CRLF": ("```\r\na\r\n```\r\n", [CodeBlock("", "a")]),
    "empty block": ("```\n```", [CodeBlock("", "")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_code_blocks(name: str) -> None:
    markdown, expected = CASES[name]
    assert code_blocks(markdown) == expected


def test_language_is_the_first_word_of_the_info_string() -> None:
    assert CodeBlock('python title="a.py"', "").language == "python"
    assert CodeBlock("", "").language == ""
