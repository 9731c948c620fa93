"""Make untrusted model output safe to show in a terminal or to emit as JSON.

A model can emit any code point, and a random-weights model emits arbitrary bytes. Raw
control characters would let that text drive the terminal: clear the screen
(``ESC [2J``), set the window title or plant a hyperlink (OSC ``ESC ]``), reach the CSI
parser through the one-byte C1 form (``U+009B``), or overwrite the current line (CR).
Bidirectional overrides and isolates let text display in an order other than the one it
has ("Trojan Source", CVE-2021-42574).

``neutralize`` keeps LF and TAB and turns everything else of that kind into a visible,
inert stand-in: C0 controls and DEL become their Unicode Control Pictures (ESC -> ``␛``,
CR -> ``␍``, DEL -> ``␡``), C1 controls the text ``\\x9b``, and bidi controls the text
``<U+202E>``. A CRLF pair is first reduced to LF, since it only ends a line.

``dumps_json`` writes readable UTF-8 JSON (``ensure_ascii=False``) but escapes DEL, the
C1 controls and the bidi controls as ``\\uXXXX``. ``json.dumps`` already escapes C0, and
those characters can only occur inside JSON strings, where an escape means the same
character, so ``json.loads`` gives back an identical object.
"""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = ["dumps_json", "neutralize"]

_BIDI_CONTROLS: Final = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
_C1_CONTROLS: Final = range(0x80, 0xA0)


class _Replacer:
    """Apply a code point -> text table, by whichever CPython method is fast for the input.

    ``str.translate`` has a fast path for ASCII strings only; on other text it does a dict
    lookup per character (about 30 times slower than a regex scan here). So ASCII text is
    translated and any other text is scanned with a character class built from the same
    table, which costs little when, as usual, nothing matches.
    """

    __slots__ = ("_pattern", "_table")

    def __init__(self, table: dict[int, str]) -> None:
        self._table = table
        self._pattern = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(table)) + "]")

    def __call__(self, text: str) -> str:
        if text.isascii():
            return text.translate(self._table)
        return self._pattern.sub(self._lookup, text)

    def _lookup(self, match: re.Match[str]) -> str:
        return self._table[ord(match.group())]


def _build_terminal_table() -> dict[int, str]:
    table = {code: chr(0x2400 + code) for code in range(0x20) if chr(code) not in "\n\t"}
    table[0x7F] = "\u2421"  # SYMBOL FOR DELETE
    table.update((code, f"\\x{code:02x}") for code in _C1_CONTROLS)
    table.update((code, f"<U+{code:04X}>") for code in _BIDI_CONTROLS)
    return table


_replace_for_terminal: Final = _Replacer(_build_terminal_table())
_replace_for_json: Final = _Replacer(
    {code: f"\\u{code:04x}" for code in (0x7F, *_C1_CONTROLS, *_BIDI_CONTROLS)}
)


def neutralize(text: str) -> str:
    """Return ``text`` with every terminal control made visible and inert (LF, TAB kept)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return _replace_for_terminal(text)


def dumps_json(obj: object, *, indent: int | None = None) -> str:
    """Serialise ``obj`` as readable JSON that carries no raw terminal or bidi controls."""
    return _replace_for_json(json.dumps(obj, ensure_ascii=False, indent=indent))
