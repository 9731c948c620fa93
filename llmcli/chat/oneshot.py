"""One answer for a shell pipeline (``llmcli complete``): shown as it streams, or kept for
one JSON document on stdout; kept however it ends (an error, Ctrl-C, SIGTERM from
``timeout``, SIGHUP), and logged in the history either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmcli.chat.attachments import Attachment, UserMessage
    from llmcli.config.profiles import Profile
    from llmcli.config.roles import Role
    from llmcli.storage.store import Attachment as StoredAttachment
    from llmcli.ui.render import AnswerPrinter
    from llmcli.wire.client import ChatRequest
    from llmcli.wire.events import Outcome


def user_message(
    text: str, role: Role | None, attachments: Sequence[Attachment], *, plain: bool = False
) -> UserMessage:
    """The one message ``complete`` sends: ``text`` (the argument, then stdin) and the files,
    through the role's prompt template when it has one. ``plain``: a text completion
    (``--text``), which cannot carry images."""
    from llmcli.chat.attachments import build_message
    from llmcli.config.roles import fill_prompt
    from llmcli.errors import UsageError

    if plain and any(attachment.is_image for attachment in attachments):
        raise UsageError("--text sends plain text: images cannot go with it; drop --text")

    def wrap(whole: str) -> str:
        assert role is not None
        filled = fill_prompt(role, whole or None)
        if filled is None:
            raise UsageError(
                f"role {role.name!r} puts your input into its prompt: pipe some"
                f" (cat notes.txt | llmcli complete --role {role.name}), give it as an"
                " argument, or attach a file (-a FILE)"
            )
        return filled

    has_template = role is not None and role.prompt is not None
    return build_message(text, attachments, wrap=wrap if has_template else None)


def answer_once(
    profile: Profile,
    request: ChatRequest,
    *,
    printer: AnswerPrinter | None,
    text_prompt: str | None = None,
    stream: bool = True,
    log: Callable[[Outcome], None] | None = None,
) -> None:
    """Ask ``profile`` once; ``printer`` shows the answer (``None``: one JSON document).

    An error or an ending keeps what arrived, marks it, logs it and is raised again for
    the command boundary to report.
    """
    import asyncio

    from llmcli.endings import SignalEnding, run_until_signalled
    from llmcli.errors import LlmcliError
    from llmcli.ui.sanitize import dumps_json
    from llmcli.wire.answer import answer_to_json, drive_answer
    from llmcli.wire.events import Outcome

    outcome = Outcome()
    run = drive_answer(
        profile,
        request,
        show=printer.show if printer else _ignore,
        outcome=outcome,
        text_prompt=text_prompt,
        stream=stream,
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
            print(dumps_json(answer_to_json(outcome, profile=profile.name)))
        if log is not None:
            log(outcome)
        raise
    if printer:
        printer.close()
    else:
        print(dumps_json(answer_to_json(outcome, profile=profile.name)))
    if log is not None:
        log(outcome)


def log_exchange(
    profile: str,
    model: str | None,
    system: str | None,
    prompt: str,
    outcome: Outcome,
    *,
    attachments: tuple[StoredAttachment, ...] = (),
    title: str | None = None,
) -> None:
    """Record the exchange in the history; a history that cannot be written only warns.

    ``prompt`` is the message's text (attached text files whole, images by name only);
    ``attachments`` what the history says of each file (never an image's bytes); ``title``
    the conversation's when files went with it (else the message gives it)."""
    from llmcli.errors import LlmcliError
    from llmcli.storage.store import Store, StoredMessage, message_from_outcome
    from llmcli.ui.notices import report

    try:
        with Store.open() as store:
            conversation = store.new_conversation(
                profile=profile, model=model, system=system, title=title
            )
            user = StoredMessage(role="user", content=prompt, attachments=attachments)
            store.append(conversation, user)
            store.append(conversation, message_from_outcome(outcome, profile=profile, model=model))
    except LlmcliError as error:
        report(f"warning: not logged: {error} (--no-log skips the history)")


def _ignore(_event: object) -> None:
    return None
