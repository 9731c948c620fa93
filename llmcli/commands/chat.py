"""``llmcli chat``: the interactive REPL, or a scripted chat when stdin is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from llmcli.commands.boundary import command_boundary
from llmcli.commands.options import (
    GrammarOption,
    JsonSchemaOption,
    MaxTokensOption,
    ModelOption,
    NoLogOption,
    ProfileOption,
    RawOption,
    SeedOption,
    StopOption,
    SystemOption,
    TemperatureOption,
    TopPOption,
    check_sampling,
    resolve_profile,
    spawned_backend,
    with_dialect,
)

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.storage.store import Store


@command_boundary
def chat(
    profile: ProfileOption = None,
    model: ModelOption = None,
    system: SystemOption = None,
    temperature: TemperatureOption = None,
    top_p: TopPOption = None,
    max_tokens: MaxTokensOption = None,
    seed: SeedOption = None,
    stop: StopOption = None,
    reasoning: Annotated[
        str, typer.Option("--reasoning", help="show, hide or collapse reasoning.")
    ] = "collapse",
    raw: RawOption = False,
    resume_latest: Annotated[
        bool, typer.Option("--continue", "-c", help="Continue the latest conversation.")
    ] = False,
    conversation_id: Annotated[
        str | None,
        typer.Option("--conversation", help="Continue conversation ID.", show_default=False),
    ] = None,
    no_log: NoLogOption = False,
    grammar: GrammarOption = None,
    json_schema: JsonSchemaOption = None,
) -> None:
    """Chat in the terminal; with stdin piped, each line is a message."""
    import asyncio

    from llmcli.chat.session import ChatSession, Conversation, Sampling, parse_reasoning, resume
    from llmcli.config.profiles import BACKEND_URL_ENV, load_profiles, select_profile
    from llmcli.endings import SignalEnding, ending_error
    from llmcli.errors import UsageError
    from llmcli.ui.render import OutputMode, PipedChatView
    from llmcli.wire.constraints import constraint_fields, read_grammar, read_schema

    reasoning_mode = parse_reasoning(reasoning)
    if reasoning_mode is None:
        raise UsageError(f"--reasoning {reasoning}: use show, hide or collapse")
    check_sampling(temperature, top_p, max_tokens)
    profiles = load_profiles()
    # Spawned servers (the first, and any a /profile switch starts) stop when chat ends.
    with contextlib.ExitStack() as servers:
        chosen = servers.enter_context(spawned_backend(resolve_profile(profile, model)))
        if grammar is not None or json_schema is not None:
            chosen = with_dialect(chosen)
        store = None if no_log else _open_store()
        if resume_latest or conversation_id:
            if store is None:
                raise UsageError("--continue needs the history; drop --no-log")
            conversation = resume(store, conversation_id, chosen, model)
        else:
            conversation = Conversation(profile=chosen, model=model, system=system)
        if system is not None:
            conversation.system = system
        conversation.sampling = Sampling(
            temperature,
            top_p,
            max_tokens,
            seed,
            tuple(stop or ()),
            grammar=None if grammar is None else read_grammar(grammar),
            schema=None if json_schema is None else read_schema(json_schema),
        )
        conversation.reasoning = reasoning_mode
        # A constraint this backend cannot apply is refused now, not at the first message.
        constraint_fields(
            conversation.profile.dialect,
            grammar=conversation.sampling.grammar,
            schema=conversation.sampling.schema,
        )
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        mode = OutputMode.detect(raw=raw)
        if interactive:
            from llmcli.ui.chatview import TerminalChatView

            view = TerminalChatView(
                sys.stdout,
                color=mode.color_out,
                markdown=mode.markdown,
                reasoning=lambda: conversation.reasoning,
            )
        else:
            view = PipedChatView(mode, reasoning=lambda: conversation.reasoning)  # type: ignore[assignment]
        session = ChatSession(conversation, view, store)
        from llmcli.chat.repl import Repl

        def load_profile(name: str) -> Profile:
            return servers.enter_context(spawned_backend(select_profile(profiles, name)))

        def route_model(home: str | None, model_name: str) -> Profile | None:
            from llmcli.config.routes import route

            start = select_profile(profiles, home)
            if BACKEND_URL_ENV in start.overrides:
                return None
            target = route(profiles.profiles, start, model_name)
            if target.name == conversation.profile.name:
                return None
            return servers.enter_context(spawned_backend(target))

        repl = Repl(
            session,
            profile_names=profiles.profiles,
            load_profile=load_profile,
            history_path=None if store is None else store.path.with_name("input_history"),
            route_model=route_model,
            home=profile,
        )
        try:
            if BACKEND_URL_ENV in conversation.profile.overrides:
                view.info(session.backend_text())  # where BACKEND_URL sends this chat, and why
            if interactive and conversation.id and store is not None:
                view.info(_recap(store, conversation.id))
            # One client per profile for the whole chat, closed by run() however it ends.
            asyncio.run(repl.run(None if interactive else _script_lines()))
        except SignalEnding as ending:
            raise ending_error(ending) from None
        finally:
            if store is not None:
                store.close()
        if isinstance(view, PipedChatView) and view.failures:
            raise typer.Exit(1)


def _recap(store: Store, conversation_id: str) -> str:
    """Which conversation goes on, and where it left off: the last exchange, in brief."""
    import shutil

    from llmcli.ui.transcript import format_time, recap_lines

    stored = store.get(conversation_id)
    count = len(stored.messages)
    head = (
        f"continuing {stored.id} ({count} message{'' if count == 1 else 's'},"
        f" the last at {format_time(stored.updated_at)}):"
    )
    return "\n".join([head, *recap_lines(stored, shutil.get_terminal_size().columns)])


def _open_store() -> Store:
    from llmcli.storage.store import Store

    return Store.open()


def _script_lines() -> Iterator[str]:
    """Piped stdin, one message a line, decoded and capped as every command's input is."""
    from llmcli.commands.boundary import report
    from llmcli.ui.stdin_text import iter_stdin_lines, prompt_limit

    return iter_stdin_lines(report, limit=prompt_limit())
