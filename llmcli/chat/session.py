"""A chat conversation: its state, and what each user action does to it.

No terminal code here: the REPL (``repl.py``) reads input and calls these methods; a
``ChatView`` shows what happens. Every exchange is logged to the store as it completes,
and an answer cut short (Ctrl-C, a backend error) is kept, marked, in the conversation.
Reasoning is stored but never sent back to the server. The session keeps one client per
profile (``ClientPool``) until it is closed, so an answer reuses the last one's connection
instead of paying a new handshake, where the server keeps it open (zen does; llama-server
closes it after every streamed answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from llmcli.chat.attachments import (
    Attachment,
    SentMessage,
    build_message,
    refuse_without_vision,
    unpack_message,
)
from llmcli.chat.clientpool import ClientPool
from llmcli.config.profiles import Profile, describe_model, describe_url
from llmcli.errors import LlmcliError, UsageError
from llmcli.storage.store import Branch, Store, StoredMessage, make_title, message_from_outcome
from llmcli.storage.store import Conversation as StoredConversation
from llmcli.wire.answer import drive_answer_on
from llmcli.wire.client import ChatRequest, Client
from llmcli.wire.constraints import constraint_fields
from llmcli.wire.events import Event, Outcome, Usage

ReasoningMode = Literal["show", "hide", "collapse"]
REASONING_MODES: tuple[ReasoningMode, ...] = ("show", "hide", "collapse")
_REASONING_MEANS: dict[ReasoningMode, str] = {
    "show": "streams and stays on screen",
    "hide": "not shown, still kept",
    "collapse": "streams, then folds to one line",
}
REASONING_USAGE = "use /reasoning show, hide or collapse"


def parse_reasoning(text: str) -> ReasoningMode | None:
    """A reasoning mode from what a user typed, or None when it names none."""
    for mode in REASONING_MODES:
        if text.strip().lower() == mode:
            return mode
    return None


def describe_reasoning(mode: ReasoningMode) -> str:
    """One line saying what a reasoning mode does: ``reasoning: hide (not shown ...)``."""
    return f"reasoning: {mode} ({_REASONING_MEANS[mode]})"


class ChatView(Protocol):
    """What the conversation shows; the terminal and the scripted views implement it."""

    def begin_answer(self, model: str | None) -> Callable[[Event], None]: ...
    def end_answer(self, outcome: Outcome) -> None: ...
    def info(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...


@dataclass(slots=True)
class Sampling:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # A grammar or JSON schema every answer must follow (already read from its file).
    grammar: str | None = None
    schema: dict[str, object] | None = None


@dataclass(slots=True)
class Totals:
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    answers: int = 0
    cost: float = 0.0
    cost_known: bool = False

    def add(self, usage: Usage | None, cost: str | None) -> None:
        self.answers += 1
        if usage is not None:
            self.prompt += usage.prompt_tokens or 0
            self.completion += usage.completion_tokens or 0
            self.cached += usage.cached_tokens or 0
        if cost is not None:
            try:
                self.cost += float(cost)
                self.cost_known = True
            except ValueError:
                pass


@dataclass(frozen=True, slots=True)
class Settings:
    """What a slash command may change: restored whole when the command fails."""

    profile: Profile
    model: str | None
    system: str | None
    reasoning: ReasoningMode


@dataclass(slots=True)
class Conversation:
    """The live conversation; ``messages`` is what the server is sent (never reasoning)."""

    profile: Profile
    model: str | None
    system: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    messages: list[dict[str, Any]] = field(default_factory=list)
    id: str | None = None
    reasoning: ReasoningMode = "collapse"
    last_answer: str = ""
    totals: Totals = field(default_factory=Totals)
    # The seq of the last assistant record in the store, so /retry can branch from it.
    last_answer_seq: int | None = None
    # Without a store (--no-log) the records are kept here instead, so /save has them.
    unlogged: list[StoredMessage] = field(default_factory=list)

    def settings(self) -> Settings:
        return Settings(self.profile, self.model, self.system, self.reasoning)

    def restore(self, settings: Settings) -> None:
        self.profile = settings.profile
        self.model = settings.model
        self.system = settings.system
        self.reasoning = settings.reasoning


class ChatSession:
    """Runs a conversation: asks, retries, switches backends, logs every exchange.

    The session owns ``clients``: whoever runs it calls :meth:`aclose` when the chat ends.
    """

    def __init__(
        self,
        conversation: Conversation,
        view: ChatView,
        store: Store | None,
        clients: ClientPool | None = None,
    ) -> None:
        self.conversation = conversation
        self.view = view
        self.store = store
        self.clients = clients if clients is not None else ClientPool()

    def client(self) -> Client:
        """The client for the conversation's current profile, kept across answers."""
        return self.clients.get(self.conversation.profile)

    async def aclose(self) -> None:
        """Close every client the chat opened (its connections with them)."""
        await self.clients.aclose()

    # -- answers ---------------------------------------------------------------------------

    async def ask(self, text: str, attachments: Sequence[Attachment] = ()) -> Outcome:
        """Send one user message (with files ``/file`` or ``-a`` read) and stream the answer
        into the conversation. Call :meth:`check_message` first: it says what would fail."""
        conversation = self.conversation
        message = build_message(text, attachments)
        conversation.messages.append({"role": "user", "content": message.content})
        stored = message.stored_attachments()
        self._log(
            StoredMessage(role="user", content=message.text, attachments=stored),
            title=message.title,
        )
        return await self._answer()

    async def check_message(self, text: str, attachments: Sequence[Attachment]) -> None:
        """Refuse, before anything is sent or kept, a message too big with its files, or
        images for a server that says it cannot see them."""
        if attachments:
            build_message(text, attachments)
            await refuse_without_vision(self.client(), attachments)

    async def retry(self) -> Outcome | None:
        """Ask again for the last answer. In the history the old answer stays, as a branch
        (``/branches`` lists it, ``/branch`` goes back to it), as ``/undo`` keeps what it
        drops; without a history (``--no-log``) it is gone."""
        conversation = self.conversation
        if not conversation.messages or conversation.messages[-1]["role"] != "assistant":
            self.view.warn("nothing to retry yet")
            return None
        # The store first: if it fails, the conversation is as it was.
        seq = conversation.last_answer_seq
        if self.store is not None and conversation.id and seq is not None:
            path = self.store.get(conversation.id).messages
            if not path or path[-1].seq != seq:  # the chat and its record disagree
                raise LlmcliError("the history does not hold this chat's last answer; not retried")
            self.store.set_head(conversation.id, path[-1].parent)
            self.view.info("asking again; the earlier answer stays as a branch (/branches)")
        if self.store is None and seq is not None and seq < len(conversation.unlogged):
            del conversation.unlogged[seq]
        conversation.messages.pop()
        return await self._answer()

    async def _answer(self) -> Outcome:
        conversation = self.conversation
        request = ChatRequest(
            messages=self._request_messages(),
            model=conversation.model,
            temperature=conversation.sampling.temperature,
            top_p=conversation.sampling.top_p,
            max_tokens=conversation.sampling.max_tokens,
            seed=conversation.sampling.seed,
            stop=conversation.sampling.stop,
            extra=constraint_fields(
                conversation.profile.dialect,
                grammar=conversation.sampling.grammar,
                schema=conversation.sampling.schema,
            ),
        )
        outcome = Outcome()
        show = self.view.begin_answer(conversation.model or conversation.profile.model)
        try:
            await drive_answer_on(self.client(), request, show=show, outcome=outcome)
        except asyncio.CancelledError:
            outcome.interrupted = True
        except LlmcliError as error:
            outcome.error = str(error)
        self._keep(outcome)
        self.view.end_answer(outcome)
        return outcome

    def _keep(self, outcome: Outcome) -> None:
        """The answer joins the conversation, however it ended."""
        conversation = self.conversation
        answer = outcome.answer
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.tool_calls:
            message["tool_calls"] = [c.to_openai() for c in answer.tool_calls]
        conversation.messages.append(message)
        conversation.last_answer = answer.content
        conversation.totals.add(answer.usage, answer.cost)
        stored = message_from_outcome(
            outcome,
            profile=conversation.profile.name,
            model=answer.model or conversation.model or conversation.profile.model,
        )
        conversation.last_answer_seq = self._log(stored)

    def _request_messages(self) -> list[dict[str, Any]]:
        system = self.conversation.system
        head = [{"role": "system", "content": system}] if system else []
        return head + list(self.conversation.messages)

    def _log(self, message: StoredMessage, *, title: str | None = None) -> int | None:
        conversation = self.conversation
        if self.store is None:
            kept = conversation.unlogged
            stamp = time.time() if message.created_at is None else message.created_at
            kept.append(replace(message, seq=len(kept), created_at=stamp))
            return len(kept) - 1
        if conversation.id is None:
            conversation.id = self.store.new_conversation(
                profile=conversation.profile.name,
                model=conversation.model or conversation.profile.model,
                system=conversation.system,
                title=title,
            )
        return self.store.append(conversation.id, message)

    # -- editing the past: /undo, /edit-last, /branches -------------------------------------

    def user_text(self, back: int = 1) -> str:
        """What the user wrote ``back`` messages ago (1: the last one), to edit it."""
        index = self._user_index(back)
        return _text_of(self.conversation.messages[index].get("content"))

    def user_message(self, back: int = 1) -> SentMessage:
        """The user's ``back``-th last message taken apart, to edit it: the text typed, and
        its files (text files as sent; images while this chat still holds their bytes)."""
        index = self._user_index(back)
        content = self.conversation.messages[index].get("content")
        text = _text_of(content)
        conversation = self.conversation
        if self.store is not None and conversation.id is not None:
            kept: Sequence[StoredMessage] = self.store.get(conversation.id).messages
        else:
            kept = conversation.unlogged
        users = [m for m in kept if m.role == "user"]
        if len(users) < back or not users[-back].attachments:
            return SentMessage(text)
        urls = [
            str(part["image_url"].get("url", ""))
            for part in (content if isinstance(content, list) else [])
            if isinstance(part, dict) and isinstance(part.get("image_url"), dict)
        ]
        return unpack_message(text, users[-back].attachments, urls)

    def rewind(self, back: int = 1) -> None:
        """Drop the conversation from the user's ``back``-th last message on (1: the last).

        In the history nothing is deleted: the head moves back to before that message, the
        dropped exchanges stay as a branch (``/branches`` lists it, ``/branch`` returns to
        it) and the next message starts a new one. Without a history (``--no-log``) they
        are gone. The store goes first: when it fails, the conversation is as it was.
        """
        conversation = self.conversation
        index = self._user_index(back)
        if self.store is not None and conversation.id is not None:
            path = self.store.get(conversation.id).messages
            users = [m for m in path if m.role == "user"]
            if len(users) < back:  # the chat and its record disagree: trust neither
                raise LlmcliError("the history does not hold this chat's messages; nothing undone")
            cut = users[-back]
            self.store.set_head(conversation.id, cut.parent)
            kept: list[StoredMessage] = list(path[: path.index(cut)])
        else:
            unlogged = conversation.unlogged
            starts = [i for i, m in enumerate(unlogged) if m.role == "user"]
            if len(starts) >= back:
                del unlogged[starts[-back] :]
            kept = unlogged
        del conversation.messages[index:]
        answers = [m for m in kept if m.role == "assistant"]
        conversation.last_answer = answers[-1].content if answers else ""
        conversation.last_answer_seq = answers[-1].seq if answers else None

    def branches(self) -> list[Branch]:
        """The branches of this conversation in the history, the current one first."""
        conversation = self.conversation
        if self.store is None:
            raise UsageError("branches live in the history, and this chat is not logged (--no-log)")
        if conversation.id is None:
            raise UsageError("no branches yet: send a message first")
        return self.store.branches(conversation.id)

    def switch_branch(self, seq: int) -> int | None:
        """Go on from the branch through message ``seq`` (its newest way on); return the
        number of its last message."""
        conversation = self.conversation
        if self.store is None or conversation.id is None:
            self.branches()  # says why there are none
            return None
        stored = self.store.get(conversation.id, branch=seq)
        self.store.set_head(conversation.id, stored.head)
        _adopt(conversation, stored)
        return stored.head

    def _user_index(self, back: int) -> int:
        """Where the user's ``back``-th last message is in the conversation."""
        users = [i for i, m in enumerate(self.conversation.messages) if m.get("role") == "user"]
        if not users:
            raise UsageError("nothing to undo or edit yet: send a message first")
        if not 1 <= back <= len(users):
            raise UsageError(
                f"{back} is not one of your messages: this branch has {len(users)} (1 is the last)"
            )
        return users[-back]

    # -- settings --------------------------------------------------------------------------

    def set_model(self, name: str) -> None:
        self.conversation.model = name
        self.view.info(f"model: {name}")

    def set_profile(self, profile: Profile) -> None:
        self.conversation.profile = profile
        self.conversation.model = profile.model
        self.view.info(self.backend_text())

    def backend_text(self) -> str:
        """One line: the profile, where it sends (BACKEND_URL named when it decides), the model."""
        conversation = self.conversation
        profile = conversation.profile
        return (
            f"profile: {profile.name} at {describe_url(profile)};"
            f" model: {describe_model(profile, conversation.model)}"
        )

    def model_text(self) -> str:
        conversation = self.conversation
        return f"model: {describe_model(conversation.profile, conversation.model)}"

    def set_system(self, text: str | None, *, announce: bool = True) -> None:
        if self.store is not None and self.conversation.id:
            self.store.set_system(self.conversation.id, text)
        self.conversation.system = text
        if announce:
            self.view.info(f"system prompt: {text}" if text else "system prompt cleared")

    def clear(self) -> None:
        """Start a new conversation with the same backend and settings."""
        conversation = self.conversation
        conversation.messages.clear()
        conversation.id = None
        conversation.last_answer = ""
        conversation.last_answer_seq = None
        conversation.unlogged = []
        conversation.totals = Totals()
        self.view.info("new conversation")

    def usage_text(self) -> str:
        totals = self.conversation.totals
        text = (
            f"{totals.answers} answer(s): {totals.prompt} prompt, {totals.completion} completion, "
            f"{totals.cached} cached tokens"
        )
        if totals.cost_known:
            text += f"; cost ${totals.cost:.6f}"
        return text

    def save(self, path: Path) -> Path:
        """Write the conversation as JSON (.json) or markdown (anything else).

        From the history when it is logged, else (``--no-log``) from what the chat holds.
        """
        from llmcli.ui.transcript import to_json, to_markdown

        record = self._record()
        text = to_json(record) if path.suffix.lower() == ".json" else to_markdown(record)
        path = path.expanduser()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise LlmcliError(f"{path}: cannot write: {error.strerror or error}") from None
        return path

    def _record(self) -> StoredConversation:
        conversation = self.conversation
        if self.store is not None:
            if conversation.id is None:
                raise UsageError("nothing to save yet: send a message first")
            return self.store.get(conversation.id)
        kept = tuple(conversation.unlogged)
        if not kept:
            raise UsageError("nothing to save yet: send a message first")
        first_user = next((m.content for m in kept if m.role == "user"), "")
        return StoredConversation(
            id="",  # never logged: it has no id
            title=make_title(first_user),
            profile=conversation.profile.name,
            model=conversation.model or conversation.profile.model,
            created_at=kept[0].created_at or 0.0,
            updated_at=kept[-1].created_at or 0.0,
            message_count=len(kept),
            system=conversation.system,
            messages=kept,
        )


def resume(
    store: Store, id_or_latest: str | None, profile: Profile, model: str | None
) -> Conversation:
    """A conversation from the store, ready to continue: the last one, or the one named."""
    if id_or_latest is None:
        latest = store.latest()
        if latest is None:
            raise UsageError("no conversation to continue yet: start one with llmcli chat")
        id_or_latest = latest.id
    stored = store.get(id_or_latest)
    # The stored model belongs to the stored backend; another profile brings its own.
    stored_model = stored.model if stored.profile == profile.name else None
    conversation = Conversation(profile=profile, model=model or stored_model or profile.model)
    conversation.id = stored.id
    conversation.system = stored.system
    _adopt(conversation, stored)
    assistant = [m for m in stored.messages if m.role == "assistant"]
    for message in assistant:
        usage = message.usage or {}
        conversation.totals.add(
            Usage(
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                cached_tokens=usage.get("cached_tokens"),
            ),
            message.cost,
        )
    return conversation


def _adopt(conversation: Conversation, stored: StoredConversation) -> None:
    """Make ``stored`` (one branch, read from the history) what the chat goes on from."""
    conversation.messages = [
        message for message in stored.to_request_messages() if message.get("role") != "system"
    ]
    assistant = [m for m in stored.messages if m.role == "assistant"]
    conversation.last_answer = assistant[-1].content if assistant else ""
    conversation.last_answer_seq = assistant[-1].seq if assistant else None


def _text_of(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""
