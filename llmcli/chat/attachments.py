"""Files attached to a message (``complete -a``, ``chat -a``, ``/file``): found, read, checked,
and turned into what a server is sent.

A text file goes into the message itself, after a ``File: NAME`` line, fenced with more
backticks than the longest run of them inside it (so the file cannot close the fence
early). An image (PNG, JPEG, GIF or WebP, told by its first bytes, not its name) goes as an
OpenAI ``image_url`` part holding a ``data:`` URL, and the message text names it (``Image:
NAME``). Anything else is refused in one line naming the file: a NUL byte or bytes that
are not UTF-8 make a file binary. Each file may have at most ``$LLMCLI_MAX_INPUT`` bytes
(8 MiB unless set), the same cap a prompt has, and so may the message's text as a whole.

The history keeps the message text, so it holds text files whole and images by name only,
and with the message each file's name, type, size and SHA-256: image bytes are never stored.

Before an image is sent, the server is asked whether it can see: llama-server's ``/props``
says ``modalities.vision`` (true only with a multimodal projector, ``--mmproj``), and
without vision it would refuse the image with a 500. Servers that do not say (zen, other
OpenAI-compatible ones) get the image, and their refusal, if any, is the usual one line.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmcli.errors import LlmcliError, UsageError
from llmcli.ui.sanitize import neutralize
from llmcli.ui.stdin_text import PROMPT_LIMIT_ENV, bad_byte, prompt_limit

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.storage.store import Attachment as StoredAttachment
    from llmcli.wire.client import Client

_GLOB_CHARACTERS = frozenset("*?[")
ATTACHABLE = "text (UTF-8) and PNG, JPEG, GIF or WebP images"


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file, read and checked: text (``text``) or an image (``mime`` and ``data``)."""

    name: str  # the path as the user gave it (or as a glob found it), made one safe line
    size: int
    sha256: str
    text: str | None = None
    mime: str | None = None
    data: bytes = b""

    @property
    def is_image(self) -> bool:
        return self.mime is not None

    def describe(self) -> str:
        """``notes.txt (1.2 KiB, text)``: for the lines that say what is attached."""
        kind = self.mime if self.mime else "text"
        return f"{self.name} ({format_size(self.size)}, {kind})"

    def to_stored(self) -> StoredAttachment:
        """What the history keeps of it: name, type, size and hash, never the bytes."""
        from llmcli.storage.store import Attachment as Stored

        return Stored(self.name, self.mime or "text/plain", self.size, self.sha256)

    def image_part(self) -> dict[str, Any]:
        """The OpenAI content part for an image: a ``data:`` URL, base64."""
        encoded = base64.b64encode(self.data).decode("ascii")
        return {"type": "image_url", "image_url": {"url": f"data:{self.mime};base64,{encoded}"}}


@dataclass(frozen=True, slots=True)
class UserMessage:
    """What a user message with attachments becomes: ``content`` for the server (a string,
    or a list of parts when images go with it) and ``text`` for the history and screen."""

    content: str | list[dict[str, Any]]
    text: str
    attachments: tuple[Attachment, ...] = ()
    # What a history listing calls it: the text typed, else the files' names (never their
    # contents); None when no file went with it (the message itself then).
    title: str | None = None

    def stored_attachments(self) -> tuple[StoredAttachment, ...]:
        return tuple(attachment.to_stored() for attachment in self.attachments)


def load_attachments(
    patterns: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[Attachment, ...]:
    """Every file ``patterns`` name (globs expanded, in order, each file once), read."""
    limit = prompt_limit(env)
    return tuple(read_attachment(path, label, limit) for path, label in expand_patterns(patterns))


def expand_patterns(patterns: Sequence[str]) -> list[tuple[Path, str]]:
    """(path, label) for each file: a glob that matches no file is one line naming it."""
    found: dict[str, tuple[Path, str]] = {}
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        # A file whose own name has glob characters ("[draft].md") is that file.
        if _GLOB_CHARACTERS.intersection(expanded) and not os.path.exists(expanded):
            matches = [m for m in sorted(glob.glob(expanded, recursive=True)) if os.path.isfile(m)]
            if not matches:
                raise UsageError(f"{label_for(pattern)}: no file matches")
            for match in matches:
                found.setdefault(os.path.realpath(match), (Path(match), label_for(match)))
        else:
            found.setdefault(os.path.realpath(expanded), (Path(expanded), label_for(pattern)))
    return list(found.values())


def read_attachment(path: Path, label: str, limit: int) -> Attachment:
    """``path`` as an attachment, or one line saying why it cannot be one."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise UsageError(f"{label}: a directory; attach its files (e.g. {label}/*.md)")
        if size > limit:
            raise _too_big(label, size, limit)
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except OSError as error:
        raise UsageError(f"{label}: cannot read: {error.strerror or error}") from None
    if len(data) > limit:  # it grew while we looked, or has no size (/dev/zero, a pipe)
        raise _too_big(label, None, limit)
    digest = hashlib.sha256(data).hexdigest()
    mime = image_type(data)
    if mime is not None:
        return Attachment(label, len(data), digest, mime=mime, data=data)
    nul = data.find(b"\0")
    if nul >= 0:
        raise UsageError(
            f"{label}: a binary file (a NUL byte at offset {nul}); only {ATTACHABLE} can be attached"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{label}: not UTF-8 text ({bad_byte(error)}); only {ATTACHABLE} can be attached"
        ) from None
    return Attachment(label, len(data), digest, text=text)


def image_type(data: bytes) -> str | None:
    """The image type ``data`` starts as (its magic bytes), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def fence_for(text: str) -> str:
    """A code fence longer than any run of backticks in ``text`` (at least three)."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def text_block(attachment: Attachment) -> str:
    """``File: NAME`` and the file's text, fenced."""
    text = attachment.text or ""
    fence = fence_for(text)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"File: {attachment.name}\n{fence}\n{body}{fence}"


def build_message(
    text: str,
    attachments: Sequence[Attachment],
    *,
    wrap: Callable[[str], str] | None = None,
    limit: int | None = None,
) -> UserMessage:
    """The user message: ``text``, then each text file fenced, then a line naming each image
    (all of it given to ``wrap``, a role's template, when set); images also as parts. More
    text than ``limit`` (``$LLMCLI_MAX_INPUT``) is refused."""
    blocks = [text.strip("\n")] if text.strip() else []
    blocks += [text_block(a) for a in attachments if not a.is_image]
    images = [a for a in attachments if a.is_image]
    blocks += [f"Image: {a.name}" for a in images]
    whole = "\n\n".join(blocks) if attachments else text
    if wrap is not None:
        whole = wrap(whole)
    if attachments:
        limit = prompt_limit() if limit is None else limit
        size = len(whole.encode("utf-8"))
        if size > limit:
            raise UsageError(
                f"the message with its files has {size:,} bytes, more than the {limit:,}"
                f" allowed; attach less, or raise {PROMPT_LIMIT_ENV}"
            )
    files = tuple(attachments)
    title = (text.strip() or ", ".join(a.name for a in files)) if files else None
    if not images:
        return UserMessage(whole, whole, files, title)
    parts: list[dict[str, Any]] = [{"type": "text", "text": whole}]
    parts += [a.image_part() for a in images]
    return UserMessage(parts, whole, files, title)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A user message taken apart again (for ``/edit-last``): what was typed, the files that
    went with it, and the names of images whose bytes are no longer at hand."""

    typed: str
    files: tuple[Attachment, ...] = ()
    lost_images: tuple[str, ...] = ()


def unpack_message(
    text: str, stored: Sequence[StoredAttachment], image_urls: Sequence[str] = ()
) -> SentMessage:
    """Undo :func:`build_message`: ``text`` as the history keeps it, ``stored`` the files the
    history names with it, ``image_urls`` the ``data:`` URLs sent (when still in memory).

    Text files come back as they were sent (from the message, not from the disk, which may
    have changed since). A file cannot end its fence early (the fence is longer than any run
    of backticks in it), so each block is found exactly, from the end. A message that is
    not as ``build_message`` makes it (a role's template shaped it) comes back whole.
    """
    whole = SentMessage(text)
    images = [a for a in stored if a.mime.startswith("image/")]
    texts = [a for a in stored if not a.mime.startswith("image/")]
    rest = text
    for image in reversed(images):
        tail = f"Image: {image.name}"
        if not rest.endswith(tail):
            return whole
        rest = _before_block(rest, len(rest) - len(tail))
    files: list[Attachment] = []
    for stored_file in reversed(texts):
        fence = rest.rpartition("\n")[2]
        if len(fence) < 3 or fence.strip("`"):
            return whole
        header = f"File: {stored_file.name}\n{fence}\n"
        start = rest.rfind(header)
        if start < 0 or (start and not rest[:start].endswith("\n\n")):
            return whole
        body = rest[start + len(header) : len(rest) - len(fence)]
        if hashlib.sha256(body.encode()).hexdigest() != stored_file.sha256 and body.endswith("\n"):
            body = body[:-1]  # build_message ended the file with a newline it did not have
        files.append(Attachment(stored_file.name, stored_file.bytes, stored_file.sha256, body))
        rest = _before_block(rest, start)
    files.reverse()
    # Image parts were sent in the order of the images; without them all, none is trusted.
    urls: Sequence[str | None] = image_urls if len(image_urls) == len(images) else ()
    lost: list[str] = []
    for image, url in zip(images, urls or [None] * len(images), strict=True):
        data = None if url is None else _data_url_bytes(url)
        if data is None:
            lost.append(image.name)
        else:
            files.append(
                Attachment(image.name, len(data), image.sha256, mime=image.mime, data=data)
            )
    return SentMessage(rest, tuple(files), tuple(lost))


def _before_block(text: str, end: int) -> str:
    """``text`` up to ``end``, without the blank line that separated the block there."""
    return text[:end].removesuffix("\n\n")


def _data_url_bytes(url: str) -> bytes | None:
    head, comma, payload = url.partition(",")
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        return None


async def refuse_without_vision(client: Client, attachments: Sequence[Attachment]) -> None:
    """Refuse images in one line when the server says it cannot see them (llama-server's
    ``/props`` ``modalities.vision`` false); a server that does not say is not asked twice."""
    images = [a for a in attachments if a.is_image]
    if not images or client.profile.dialect == "zen":
        return  # zen has no /props: its own answer says whether the model takes images
    try:
        props = await client.get_json(client.root_url + "/props")
    except LlmcliError:
        return
    modalities = props.get("modalities") if isinstance(props, dict) else None
    if isinstance(modalities, dict) and modalities.get("vision") is False:
        raise UsageError(
            f"{images[0].name} is an image, and the server of profile {client.profile.name!r}"
            " says its model has no vision (llama-server needs a vision model and --mmproj);"
            " nothing was sent"
        )


def check_vision(profile: Profile, attachments: Sequence[Attachment]) -> None:
    """:func:`refuse_without_vision` on a client of its own (for ``complete``)."""
    if not any(a.is_image for a in attachments):
        return
    import asyncio

    from llmcli.wire.client import Client

    async def check() -> None:
        async with Client(profile) as client:
            await refuse_without_vision(client, attachments)

    asyncio.run(check())


def label_for(path: str) -> str:
    """A file name made one inert line for the message, the screen and the history."""
    return " ".join(neutralize(path).split()) or "?"


def format_size(count: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _too_big(label: str, size: int | None, limit: int) -> UsageError:
    """``size`` None: only known to be over the limit (reading stopped there)."""
    said = "over" if size is None else f"{format_size(size)}, more than"
    return UsageError(
        f"{label}: {said} the {format_size(limit)} a file may have;"
        f" attach less, or raise {PROMPT_LIMIT_ENV} (e.g. {PROMPT_LIMIT_ENV}=64M)"
    )
