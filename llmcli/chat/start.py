"""Starting a chat: the backend and its server, the conversation (new or resumed), the view
this terminal calls for, the history, and the REPL that runs them to the end.

``llmcli chat`` parses its options into a :class:`ChatSetup` and calls :func:`run_chat`.
Profiles are loaded once; a ``/profile`` switch or a model the home profile routes
elsewhere may start another server, and every server started stops when the chat ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmcli.config.roles import Asked

if TYPE_CHECKING:
    from llmcli.chat.session import ChatSession, Conversation, ReasoningMode
    from llmcli.config.profiles import Profile
    from llmcli.storage.store import Store
    from llmcli.ui.chatview import TerminalChatView
    from llmcli.ui.render import PipedChatView
    from llmcli.ui.terminal import Terminal


@dataclass(frozen=True, slots=True)
class ChatSetup(Asked):
    """What the user asked ``llmcli chat`` for, checked: the settings a role gives defaults
    for (:class:`~llmcli.config.roles.Asked`), and the chat's own."""

    reasoning: ReasoningMode = "collapse"
    raw: bool = False
    resume_latest: bool = False
    conversation_id: str | None = None
    log: bool = True
    grammar: Path | None = None
    json_schema: Path | None = None
    role: str | None = None  # its settings fill in what the options leave unset
    attach: tuple[str, ...] = ()  # files and globs for the first message


def run_chat(setup: ChatSetup, terminal: Terminal) -> int:
    """Run the chat until it ends; how many answers failed in a piped chat (else 0).

    A terminal on stdin and stdout gets the REPL; otherwise each stdin line is a message.
    """
    import asyncio

    from llmcli.chat.attachments import load_attachments
    from llmcli.chat.repl import Repl
    from llmcli.config.profiles import load_profiles, select_profile
    from llmcli.config.roles import check_role_profile, load_roles, with_role
    from llmcli.config.routes import pinned, routed
    from llmcli.local.backend import spawned_backend, with_dialect
    from llmcli.ui.progress import BackendProgress
    from llmcli.ui.render import PipedChatView

    role = None if setup.role is None else load_roles().get(setup.role)
    profiles = load_profiles()
    check_role_profile(role, setup.profile, profiles.profiles)
    setup = with_role(setup, role)
    attached = load_attachments(setup.attach)  # a missing file fails before a server starts
    display = BackendProgress(terminal)
    store = _open_store() if setup.log else None
    with contextlib.ExitStack() as servers:
        if store is not None:
            servers.callback(store.close)  # closed last, once the servers have stopped
            setup = _resumed_profile(setup, store, profiles.profiles)

        def serve(profile: Profile) -> Profile:
            return servers.enter_context(spawned_backend(profile, display))

        chosen = serve(routed(profiles, select_profile(profiles, setup.profile), setup.model))
        if setup.grammar is not None or setup.json_schema is not None:
            chosen = with_dialect(chosen)
        conversation = _conversation(setup, chosen, store)
        session, view = _session(conversation, store, terminal, setup.raw)

        def route_model(home: str | None, model_name: str) -> Profile | None:
            target = routed(profiles, select_profile(profiles, home), model_name)
            if pinned(target) or target.name == conversation.profile.name:
                return None
            return serve(target)

        repl = Repl(
            session,
            profile_names=profiles.profiles,
            load_profile=lambda name: serve(select_profile(profiles, name)),
            history_path=None if store is None else store.path.with_name("input_history"),
            route_model=route_model,
            home=setup.profile,
            role=role,
            attachments=attached,
        )
        if pinned(conversation.profile):
            view.info(session.backend_text())  # where BACKEND_URL sends this chat, and why
        if terminal.interactive and conversation.id and store is not None:
            view.info(_recap(store, conversation.id, terminal.width))
        # One client per profile for the whole chat, closed by run() however it ends.
        asyncio.run(repl.run(None if terminal.interactive else _script_lines()))
    return view.failures if isinstance(view, PipedChatView) else 0


def _resumed_profile(setup: ChatSetup, store: Store, known: Collection[str]) -> ChatSetup:
    """``chat -c`` goes on where the conversation was: on its profile, unless ``-p`` (or the
    role) names one, or that profile is gone. A chat with a local model must not move to
    the default (a cloud service, say) just because it was continued."""
    from dataclasses import replace

    if setup.profile is not None or not (setup.resume_latest or setup.conversation_id):
        return setup
    if setup.conversation_id is not None:
        stored: str | None = store.get(setup.conversation_id).profile
    else:
        latest = store.latest()
        stored = None if latest is None else latest.profile
    return replace(setup, profile=stored) if stored in known else setup


def _conversation(setup: ChatSetup, profile: Profile, store: Store | None) -> Conversation:
    """The conversation to go on with (``--continue``) or a new one, with the setup's
    sampling; a constraint this backend cannot apply is refused now, not at the first message."""
    from llmcli.chat.session import Conversation, Sampling, resume
    from llmcli.errors import UsageError
    from llmcli.wire.constraints import constraint_fields, read_grammar, read_schema

    if setup.resume_latest or setup.conversation_id:
        if store is None:
            raise UsageError("--continue needs the history; drop --no-log")
        conversation = resume(store, setup.conversation_id, profile, setup.model)
    else:
        conversation = Conversation(profile=profile, model=setup.model, system=setup.system)
    if setup.system is not None:
        conversation.system = setup.system
    conversation.sampling = Sampling(
        setup.temperature,
        setup.top_p,
        setup.max_tokens,
        setup.seed,
        setup.stop,
        grammar=None if setup.grammar is None else read_grammar(setup.grammar),
        schema=None if setup.json_schema is None else read_schema(setup.json_schema),
    )
    conversation.reasoning = setup.reasoning
    constraint_fields(
        conversation.profile.dialect,
        grammar=conversation.sampling.grammar,
        schema=conversation.sampling.schema,
    )
    return conversation


def _session(
    conversation: Conversation, store: Store | None, terminal: Terminal, raw: bool
) -> tuple[ChatSession, TerminalChatView | PipedChatView]:
    """The session, shown in the terminal (the REPL) or as plain lines (piped stdin)."""
    from llmcli.chat.session import ChatSession
    from llmcli.ui.render import OutputMode, PipedChatView

    mode = OutputMode.for_terminal(terminal, raw=raw)
    view: TerminalChatView | PipedChatView
    if terminal.interactive:
        from llmcli.ui.chatview import TerminalChatView

        view = TerminalChatView(
            terminal.stdout,
            color=mode.color_out,
            markdown=mode.markdown,
            reasoning=lambda: conversation.reasoning,
            keys=terminal.stdin,
        )
    else:
        view = PipedChatView(
            mode,
            reasoning=lambda: conversation.reasoning,
            stdout=terminal.stdout,
            stderr=terminal.stderr,
        )
    return ChatSession(conversation, view, store), view


def _recap(store: Store, conversation_id: str, width: int) -> str:
    """Which conversation goes on, and where it left off: the last exchange, in brief."""
    from llmcli.ui.transcript import format_time, recap_lines

    stored = store.get(conversation_id)
    count = len(stored.messages)
    head = (
        f"continuing {stored.id} ({count} message{'' if count == 1 else 's'},"
        f" the last at {format_time(stored.updated_at)}):"
    )
    return "\n".join([head, *recap_lines(stored, width)])


def _open_store() -> Store:
    from llmcli.storage.store import Store

    return Store.open()


def _script_lines() -> Iterator[str]:
    """Piped stdin, one message a line, decoded and capped as every command's input is."""
    from llmcli.ui.notices import report
    from llmcli.ui.stdin_text import iter_stdin_lines, prompt_limit

    return iter_stdin_lines(report, limit=prompt_limit())
