"""llama-server's KV cache slots: list them, save one to a file, restore it, erase it.

Routes (at the server root, beside ``/v1``): ``GET /slots`` lists the slots;
``POST /slots/{id}?action=save|restore`` with ``{"filename": NAME}`` writes or reads a
file in the server's ``--slot-save-path`` directory, and ``action=erase`` empties a slot.
A server started without ``--slot-save-path`` answers every action with 501
``not_supported_error``; that becomes one line saying what to do.

Without an explicit slot, save and restore use the slot that served the latest request
(the highest ``id_task``), which is the one holding a chat's conversation; erase empties
every slot. Nothing here prints: callers get typed results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmcli.errors import StatusError, StreamError, UsageError
from llmcli.wire.client import Client

_FILENAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
NO_SAVE_PATH_HINT = (
    "the server was started without --slot-save-path: add slot_save_path to a spawned "
    "profile, or start llama-server with --slot-save-path DIR"
)


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """One slot of ``GET /slots``: its id, context size, whether busy, its latest task."""

    id: int
    n_ctx: int | None
    is_processing: bool
    id_task: int | None
    n_prompt_tokens: int | None


@dataclass(frozen=True, slots=True)
class SlotResult:
    """What one action did: ``tokens`` saved, restored or erased; ``nbytes`` written or read."""

    action: str
    slot: int
    filename: str | None
    tokens: int
    nbytes: int | None

    def describe(self) -> str:
        """One line for people: ``saved slot 1 to chat.bin (13 tokens, 6968 bytes)``."""
        size = "" if self.nbytes is None else f", {self.nbytes} bytes"
        what = f"{self.tokens} tokens{size}"
        match self.action:
            case "save":
                return f"saved slot {self.slot} to {self.filename} ({what})"
            case "restore":
                return f"restored {self.filename} into slot {self.slot} ({what})"
        return f"erased slot {self.slot} ({what})"


def check_filename(name: str) -> str:
    """A file name the server will accept: no directories, no leading dot."""
    if not _FILENAME.fullmatch(name) or ".." in name:
        raise UsageError(
            f"bad cache name {name!r}: use letters, digits, '_', '-' and '.' (e.g. chat-1.bin)"
        )
    return name


def parse_slots(payload: Any) -> list[SlotInfo]:
    """``GET /slots`` -> slots; entries that are not objects with an integer id are skipped."""
    if not isinstance(payload, list):
        raise StreamError("the server's /slots answer is not a list of slots")
    slots: list[SlotInfo] = []
    for entry in payload:
        if not isinstance(entry, Mapping) or not _is_int(entry.get("id")):
            continue
        slots.append(
            SlotInfo(
                id=entry["id"],
                n_ctx=_int_or_none(entry.get("n_ctx")),
                is_processing=entry.get("is_processing") is True,
                id_task=_int_or_none(entry.get("id_task")),
                n_prompt_tokens=_int_or_none(entry.get("n_prompt_tokens")),
            )
        )
    return slots


def latest_slot(slots: Sequence[SlotInfo]) -> int:
    """The slot that served the latest request; the first slot when none has served one."""
    if not slots:
        raise StreamError("the server reports no slots")
    used = [slot for slot in slots if slot.id_task is not None]
    if used:
        return max(used, key=lambda slot: slot.id_task or 0).id
    return min(slot.id for slot in slots)


async def require_llamacpp(client: Client) -> None:
    """Slots are llama.cpp's own: say so in one line for any other backend."""
    dialect = await client.detect_dialect()
    if dialect != "llamacpp":
        raise UsageError(
            f"KV cache slots are a llama.cpp feature; profile {client.profile.name!r} "
            f"({dialect}) has none: use a llama.cpp profile (-p local, -p demo)"
        )


async def list_slots(client: Client) -> list[SlotInfo]:
    await require_llamacpp(client)
    try:
        payload = await client.get_json(client.root_url + "/slots")
    except StatusError as error:
        if error.status in (404, 501):
            raise UsageError(
                "the server does not expose /slots: start llama-server without --no-slots"
            ) from None
        raise
    return parse_slots(payload)


async def save_slot(client: Client, name: str, slot: int | None = None) -> SlotResult:
    """Save a slot's KV cache to ``name`` in the server's slot directory."""
    return await _act(client, "save", check_filename(name), slot)


async def restore_slot(client: Client, name: str, slot: int | None = None) -> SlotResult:
    """Load ``name`` from the server's slot directory into a slot."""
    return await _act(client, "restore", check_filename(name), slot)


async def erase_slots(client: Client, slot: int | None = None) -> list[SlotResult]:
    """Empty one slot, or every slot when ``slot`` is ``None``."""
    if slot is not None:
        return [await _act(client, "erase", None, slot)]
    return [await _act(client, "erase", None, each.id) for each in await list_slots(client)]


async def _act(client: Client, action: str, filename: str | None, slot: int | None) -> SlotResult:
    if slot is None:
        slot = latest_slot(await list_slots(client))
    else:
        await require_llamacpp(client)
    body = {} if filename is None else {"filename": filename}
    url = f"{client.root_url}/slots/{slot}?action={action}"
    try:
        payload = await client.post_json(url, body)
    except StatusError as error:
        raise _explain(error, action, filename) from None
    if not isinstance(payload, Mapping):
        raise StreamError(f"the server's answer to slot {action} is not a JSON object")
    counts = {"save": "n_saved", "restore": "n_restored", "erase": "n_erased"}
    sizes = {"save": "n_written", "restore": "n_read"}
    return SlotResult(
        action=action,
        slot=_int_or_none(payload.get("id_slot")) or slot,
        filename=filename,
        tokens=_int_or_none(payload.get(counts[action])) or 0,
        nbytes=_int_or_none(payload.get(sizes.get(action, ""))),
    )


def _explain(error: StatusError, action: str, filename: str | None) -> Exception:
    if error.status == 501:
        return UsageError(f"cannot {action} slots: {NO_SAVE_PATH_HINT}")
    if action == "restore" and error.status == 400:
        return UsageError(
            f"cannot restore {filename!r}: no such saved cache in the server's slot directory, "
            "or it does not fit the slot (llmcli slots save NAME writes one)"
        )
    return error


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
