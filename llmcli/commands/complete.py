"""``llmcli complete``: one answer, made for shell pipelines."""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.commands.boundary import command_boundary
from llmcli.commands.options import (
    GrammarOption,
    JsonOption,
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
    backend,
    check_sampling,
)
from llmcli.errors import LlmcliError, UsageError


@command_boundary
def complete(
    prompt: Annotated[
        str | None,
        typer.Argument(help="The prompt; stdin is appended when piped.", show_default=False),
    ] = None,
    profile: ProfileOption = None,
    model: ModelOption = None,
    system: SystemOption = None,
    temperature: TemperatureOption = None,
    top_p: TopPOption = None,
    max_tokens: MaxTokensOption = None,
    seed: SeedOption = None,
    stop: StopOption = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Wait for the whole answer.")
    ] = False,
    raw: RawOption = False,
    no_reasoning: Annotated[
        bool, typer.Option("--no-reasoning", help="Do not show reasoning on stderr.")
    ] = False,
    as_json: JsonOption = False,
    text: Annotated[
        bool, typer.Option("--text", help="Text completion via /completions (no chat template).")
    ] = False,
    no_log: NoLogOption = False,
    grammar: GrammarOption = None,
    json_schema: JsonSchemaOption = None,
) -> None:
    """Answer one prompt: the answer on stdout, reasoning on stderr."""
    import asyncio

    from llmcli.endings import SignalEnding, run_until_signalled
    from llmcli.local.backend import with_dialect
    from llmcli.ui.render import AnswerPrinter, OutputMode
    from llmcli.ui.sanitize import dumps_json
    from llmcli.ui.terminal import Terminal
    from llmcli.wire.answer import answer_to_json, drive_answer
    from llmcli.wire.client import ChatRequest
    from llmcli.wire.constraints import constraint_fields, read_grammar, read_schema
    from llmcli.wire.events import Outcome

    check_sampling(temperature, top_p, max_tokens)
    terminal = Terminal.detect()
    content = read_prompt(prompt)
    grammar_text = None if grammar is None else read_grammar(grammar)
    schema = None if json_schema is None else read_schema(json_schema)
    with backend(profile, model, terminal) as chosen:
        if grammar_text is not None or schema is not None:
            chosen = with_dialect(chosen)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": content}
        ]
        request = ChatRequest(
            messages=messages,
            model=model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=seed,
            stop=tuple(stop or ()),
            extra=constraint_fields(chosen.dialect, grammar=grammar_text, schema=schema),
        )
        mode = OutputMode.for_terminal(terminal, raw=raw, show_reasoning=not no_reasoning)
        printer = (
            None if as_json else AnswerPrinter(mode, stdout=terminal.stdout, stderr=terminal.stderr)
        )
        outcome = Outcome()
        run = drive_answer(
            chosen,
            request,
            show=printer.show if printer else _ignore,
            outcome=outcome,
            text_prompt=content if text else None,
            stream=not no_stream,
        )
        try:
            asyncio.run(run_until_signalled(run))
        except (LlmcliError, KeyboardInterrupt, SignalEnding) as error:
            # Ctrl-C, SIGTERM (timeout, kill) and SIGHUP keep what arrived, as a failure does.
            ended = not isinstance(error, LlmcliError)
            outcome.error = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
            outcome.interrupted = ended
            if printer:
                printer.abort("[interrupted]" if ended else "[incomplete]")
            else:
                print(dumps_json(answer_to_json(outcome, profile=chosen.name)))
            if not no_log:
                log_exchange(chosen.name, model or chosen.model, system, content, outcome)
            raise
        if printer:
            printer.close()
        else:
            print(dumps_json(answer_to_json(outcome, profile=chosen.name)))
        if not no_log:
            log_exchange(chosen.name, model or chosen.model, system, content, outcome)


def _ignore(_event: object) -> None:
    return None


def read_prompt(argument: str | None, command: str = "complete") -> str:
    """The prompt from the argument, stdin, or both (``cat notes | llmcli complete "sum up"``).

    Stdin that is not UTF-8 is decoded with a warning (``llmcli.ui.stdin_text``'s rule); a
    prompt over ``$LLMCLI_MAX_INPUT`` is refused before it is read whole.
    """
    from llmcli.commands.boundary import report
    from llmcli.ui.stdin_text import prompt_limit, read_stdin_text

    limit = prompt_limit()
    piped = read_stdin_text(report, limit=limit)
    parts = [part for part in (argument, piped) if part and part.strip()]
    if not parts:
        raise UsageError(
            f"no prompt: give one as an argument or on stdin (echo hi | llmcli {command})"
        )
    prompt = "\n\n".join(part.strip("\n") for part in parts)
    if len(prompt) > limit:
        raise UsageError(
            f"the prompt has {len(prompt):,} characters, more than the {limit:,} allowed;"
            " send less, or raise LLMCLI_MAX_INPUT"
        )
    return prompt


def log_exchange(
    profile: str, model: str | None, system: str | None, prompt: str, outcome: object
) -> None:
    """Record the exchange in the history; a history that cannot be written only warns."""
    from llmcli.commands.boundary import report
    from llmcli.storage.store import Store, StoredMessage, message_from_outcome

    try:
        with Store.open() as store:
            conversation = store.new_conversation(profile=profile, model=model, system=system)
            store.append(conversation, StoredMessage(role="user", content=prompt))
            store.append(conversation, message_from_outcome(outcome, profile=profile, model=model))  # type: ignore[arg-type]
    except LlmcliError as error:
        report(f"warning: not logged: {error} (--no-log skips the history)")
