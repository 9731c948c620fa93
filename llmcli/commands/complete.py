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
from llmcli.commands.prompt_options import AttachOption, RoleOption
from llmcli.errors import UsageError


@command_boundary
def complete(
    prompt: Annotated[
        str | None,
        typer.Argument(
            metavar="PROMPT", help="The prompt; stdin is appended when piped.", show_default=False
        ),
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
    attach: AttachOption = None,
    role: RoleOption = None,
) -> None:
    """Answer one prompt: the answer on stdout, reasoning on stderr.

    \b
    Examples:
      llmcli complete "Name the capital of France"
      git diff | llmcli complete "Write a commit message for this" -p local
      llmcli complete --json --max-tokens 64 "Say hi" | jq -r .content
      llmcli complete -a notes.md -a 'src/*.py' "Where is the config read?"
      git diff | llmcli complete --role commit-message
    """
    import functools

    from llmcli.chat.attachments import check_vision, load_attachments
    from llmcli.chat.oneshot import answer_once, log_exchange, user_message
    from llmcli.config.profiles import load_profiles
    from llmcli.config.roles import Asked, check_role_profile, load_roles, with_role
    from llmcli.local.backend import with_dialect
    from llmcli.ui.render import AnswerPrinter, OutputMode
    from llmcli.ui.terminal import Terminal
    from llmcli.wire.client import ChatRequest
    from llmcli.wire.constraints import constraint_fields, read_grammar, read_schema

    check_sampling(temperature, top_p, max_tokens)
    terminal = Terminal.detect()
    chosen_role = None if role is None else load_roles().get(role)
    if chosen_role is not None and chosen_role.profile is not None and profile is None:
        check_role_profile(chosen_role, profile, load_profiles().profiles)
    asked = Asked(profile, model, system, temperature, top_p, max_tokens, seed, tuple(stop or ()))
    asked = with_role(asked, chosen_role)
    files = load_attachments(attach or ())
    optional = bool(files) or (chosen_role is not None and chosen_role.prompt is not None)
    message = user_message(
        read_prompt(prompt, required=not optional), chosen_role, files, plain=text
    )
    content, system = message.text, asked.system
    grammar_text = None if grammar is None else read_grammar(grammar)
    schema = None if json_schema is None else read_schema(json_schema)
    with backend(asked.profile, asked.model, terminal) as chosen:
        if grammar_text is not None or schema is not None:
            chosen = with_dialect(chosen)
        check_vision(chosen, files)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": message.content}
        ]
        request = ChatRequest(
            messages=messages,
            model=asked.model,
            temperature=asked.temperature,
            top_p=asked.top_p,
            max_tokens=asked.max_tokens,
            seed=asked.seed,
            stop=asked.stop,
            extra=constraint_fields(chosen.dialect, grammar=grammar_text, schema=schema),
        )
        mode = OutputMode.for_terminal(terminal, raw=raw, show_reasoning=not no_reasoning)
        printer = (
            None if as_json else AnswerPrinter(mode, stdout=terminal.stdout, stderr=terminal.stderr)
        )
        log = functools.partial(
            log_exchange,
            chosen.name,
            asked.model or chosen.model,
            system,
            content,
            attachments=message.stored_attachments(),
            title=message.title,
        )
        answer_once(
            chosen,
            request,
            printer=printer,
            text_prompt=content if text else None,
            stream=not no_stream,
            log=None if no_log else log,
        )


def read_prompt(argument: str | None, command: str = "complete", *, required: bool = True) -> str:
    """The prompt from the argument, stdin, or both (``cat notes | llmcli complete "sum up"``).

    Stdin that is not UTF-8 is decoded with a warning (``llmcli.ui.stdin_text``'s rule); a
    prompt over ``$LLMCLI_MAX_INPUT`` is refused before it is read whole. Not ``required``
    (files are attached, or a role's template is the prompt): "" when there is none.
    """
    from llmcli.commands.boundary import report
    from llmcli.ui.stdin_text import prompt_limit, read_stdin_text

    limit = prompt_limit()
    piped = read_stdin_text(report, limit=limit)
    parts = [part for part in (argument, piped) if part and part.strip()]
    if not parts and not required:
        return ""
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
