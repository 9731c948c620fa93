"""``llmcli chat``: the interactive REPL, or a scripted chat when stdin is not a terminal.

The wiring (backend, conversation, view, history, REPL) is ``llmcli.chat.start``'s.
"""

from __future__ import annotations

from typing import Annotated

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
)
from llmcli.commands.prompt_options import AttachOption, RoleOption


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
        str,
        typer.Option(
            "--reasoning",
            metavar="[show|hide|collapse]",
            help="Reasoning: show it, hide it, or show it while it streams, then fold it to one line.",
        ),
    ] = "collapse",
    raw: RawOption = False,
    resume_latest: Annotated[
        bool, typer.Option("--continue", "-c", help="Continue the latest conversation.")
    ] = False,
    conversation_id: Annotated[
        str | None,
        typer.Option(
            "--conversation", metavar="ID", help="Continue conversation ID.", show_default=False
        ),
    ] = None,
    no_log: NoLogOption = False,
    grammar: GrammarOption = None,
    json_schema: JsonSchemaOption = None,
    attach: AttachOption = None,
    role: RoleOption = None,
) -> None:
    """Chat in the terminal; with stdin piped, each line is a message.

    \b
    Examples:
      llmcli chat -p local
      llmcli chat -c --reasoning show
      llmcli chat -p local < questions.txt
      llmcli chat -a report.md -a 'screens/*.png' --role summarise
    """
    from llmcli.chat.session import parse_reasoning
    from llmcli.chat.start import ChatSetup, run_chat
    from llmcli.endings import SignalEnding, ending_error
    from llmcli.errors import UsageError
    from llmcli.ui.terminal import Terminal

    reasoning_mode = parse_reasoning(reasoning)
    if reasoning_mode is None:
        raise UsageError(f"--reasoning {reasoning}: use show, hide or collapse")
    check_sampling(temperature, top_p, max_tokens)
    setup = ChatSetup(
        profile=profile,
        model=model,
        system=system,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stop=tuple(stop or ()),
        reasoning=reasoning_mode,
        raw=raw,
        resume_latest=resume_latest,
        conversation_id=conversation_id,
        log=not no_log,
        grammar=grammar,
        json_schema=json_schema,
        role=role,
        attach=tuple(attach or ()),
    )
    try:
        failures = run_chat(setup, Terminal.detect())
    except SignalEnding as ending:
        raise ending_error(ending) from None
    if failures:
        raise typer.Exit(1)
