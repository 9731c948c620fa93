"""The interactive chat loop: prompt-toolkit input, slash commands, Ctrl-C that stops an answer.

Enter sends; Alt+Enter (or Esc then Enter) inserts a newline; a pasted block stays one
message. Ctrl-C while an answer streams stops it (the partial answer is kept, marked);
Ctrl-C on a prompt with text clears it, on an empty prompt twice exits; Ctrl-D exits.
When stdin is not a terminal, each line is one message, so a chat can be scripted.
SIGTERM and SIGHUP end the chat as Ctrl-C ends an answer: what arrived is kept. However
the chat ends, the session's clients (and their connections) are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.styles import Style

from llmcli.chat import slash
from llmcli.chat.attachments import Attachment, SentMessage, load_attachments
from llmcli.chat.codeblocks import code_blocks
from llmcli.chat.session import REASONING_USAGE, ChatSession, describe_reasoning, parse_reasoning
from llmcli.config.profiles import Profile
from llmcli.config.roles import Role
from llmcli.endings import ENDING_SIGNALS, SignalEnding
from llmcli.errors import LlmcliError, UsageError
from llmcli.storage.private_files import create_private_file
from llmcli.ui.branches import branch_lines
from llmcli.ui.clipboard import copy_to_clipboard
from llmcli.wire.client import Client

T = TypeVar("T")
__all__ = ["Repl", "cache_command", "cache_command_on", "copy_to_clipboard", "edit_in_editor"]


class Repl:
    """Reads input, dispatches slash commands, and runs answers cancellably."""

    def __init__(
        self,
        session: ChatSession,
        *,
        profile_names: Iterable[str],
        load_profile: Callable[[str], Profile],
        history_path: Path | None,
        route_model: Callable[[str | None, str], Profile | None] | None = None,
        home: str | None = None,
        role: Role | None = None,
        attachments: Iterable[Attachment] = (),
    ) -> None:
        self.session = session
        self.profile_names = sorted(profile_names)
        # Both may fail (an unknown name, a server that does not start) and change nothing.
        self.load_profile = load_profile
        # (home, model): the profile home's routes send the model to, else None.
        self.route_model = route_model
        # The profile asked for (-p, then each /profile that worked): where routes start.
        self.home = home
        self.history_path = history_path
        self.model_names: list[str] = []
        self._next_message: str | None = None
        self.role = role  # the role -r or /role chose, for /role to say
        # What the role on replaced (system, sampling), for /role - and the next /role.
        # Empty for a role from --role: its values filled only what the options left unset.
        self._role_base: dict[str, object] = {}
        # Files -a and /file read, sent with the next message (then dropped).
        self.pending: tuple[Attachment, ...] = tuple(attachments)
        # /edit-last N: the next message replaces the user's N-th last one, as a branch.
        self._editing: int | None = None
        self._before_edit: tuple[Attachment, ...] = ()  # pending before /edit-last re-attached
        self._done = False
        # Model names are only for Tab: a script (run_lines) has none to complete.
        self._completing = False
        # Background look-ups (model names for Tab); held so they are not collected mid-flight.
        self._background: set[asyncio.Future[None]] = set()
        self._ended_by: int | None = None  # the signal that ends the chat, once one came
        self._reading = False  # blocked in a synchronous read of the next scripted line
        self._interrupted = False  # Ctrl-C stopped an answer (ends a scripted chat)
        self._closing = False

    # -- the loops ---------------------------------------------------------------------------

    async def run(self, lines: Iterable[str] | None = None) -> None:
        """The whole chat: the terminal prompt, or (``lines`` given) one message a line.

        However it ends (Ctrl-D, /exit, Ctrl-C, an error, SIGTERM or SIGHUP), look-ups
        still running are cancelled and the session's clients closed. A signal then raises
        :class:`SignalEnding`; Ctrl-C outside an answer propagates as asyncio.run makes it.
        """
        main = asyncio.current_task()
        assert main is not None
        with self._ending_signals(main):
            try:
                if lines is None:
                    await self.run_terminal()
                else:
                    await self.run_lines(lines)
            except (asyncio.CancelledError, SignalEnding):
                if self._ended_by is None:
                    raise
            finally:
                self._closing = True
                if self._ended_by is not None and main.cancelling():
                    main.uncancel()
                await self._close()
        if self._ended_by is not None:
            raise SignalEnding(self._ended_by)

    async def _close(self) -> None:
        background = list(self._background)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self.session.aclose()

    @contextlib.contextmanager
    def _ending_signals(self, main: asyncio.Task[None]) -> Iterator[None]:
        """SIGTERM and SIGHUP end the chat as Ctrl-C ends an answer: what arrived is kept.

        While the loop runs, a signal cancels ``main``, and the answer in flight is kept,
        marked. While the loop is blocked reading a scripted line, nothing runs that could
        be cancelled, and the read would resume after the signal (PEP 475): the handler
        raises out of the read instead. That is why this is not ``run_until_signalled``,
        whose handler runs on the loop, and so not until the next line arrives.
        """
        loop = asyncio.get_running_loop()

        def stop() -> None:
            if not self._closing:  # a second signal must not cut the clients' closing short
                main.cancel()

        def end(signum: int, frame: FrameType | None) -> None:
            if self._ended_by is None:
                self._ended_by = signum
            if self._reading:
                raise SignalEnding(signum)
            loop.call_soon_threadsafe(stop)

        # Only the main thread may set handlers; a signal ignored from the start (nohup)
        # stays ignored.
        in_main = threading.current_thread() is threading.main_thread()
        previous = {
            signum: handler
            for signum in (ENDING_SIGNALS if in_main else ())
            if (handler := signal.getsignal(signum)) is not signal.SIG_IGN
        }
        for signum in previous:
            signal.signal(signum, end)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    async def run_terminal(self) -> None:
        self._completing = True
        prompt = self._prompt_session()
        self._spawn(self._load_model_names())
        armed = False
        self.session.view.info("Enter sends · Alt+Enter new line · /help · Ctrl-D exits")
        if self.role is not None:  # --role: say what is on, as /role would
            self.session.view.info(_role_line(self.role))
        while not self._done:
            try:
                text = await prompt.prompt_async(self._prompt_text(), default=self._take_next())
            except KeyboardInterrupt:
                if self._editing is not None:
                    self._cancel_edit()
                    self.session.view.info("edit cancelled; nothing changed")
                    continue
                if armed:
                    break
                armed = True
                self.session.view.info("(Ctrl-C again or Ctrl-D to exit)")
                continue
            except EOFError:
                break
            armed = False
            await self.handle(text)

    async def run_lines(self, lines: Iterable[str]) -> None:
        """A scripted chat. Ctrl-C (SIGINT) stops the answer, which keeps what arrived,
        and then the script: a script cannot answer "again?" as a person at a prompt can,
        and whoever runs it must see it was interrupted (exit 130)."""
        for line in self._read(lines):
            text = line.rstrip("\n")
            if text.strip():
                await self.handle(text)
            if self._interrupted:
                raise KeyboardInterrupt
            if self._done:
                break

    def _read(self, lines: Iterable[str]) -> Iterator[str]:
        """``lines`` one by one, saying while each is awaited (see ``_ending_signals``)."""
        iterator = iter(lines)
        while True:
            self._reading = True
            try:
                if self._ended_by is not None:  # a signal came between the answer and now
                    return
                line = next(iterator, None)
            finally:
                self._reading = False
            if line is None:
                return
            yield line

    async def handle(self, text: str) -> None:
        if slash.is_slash(text):
            self._cancel_edit()  # a command instead of the edited message: no edit
            try:
                call = slash.parse(text)
            except slash.UnknownCommand as error:
                self.session.view.warn(str(error))
                return
            await self._transaction(call)
            return
        if not text.strip() and not self.pending:
            return  # Enter on an empty prompt: nothing to send (files alone may go)
        if text.lstrip().startswith("//"):
            text = text.lstrip()[1:]
        files = self.pending
        if files:
            try:
                await self.session.check_message(text, files)
            except LlmcliError as error:
                self.session.view.warn(f"{error} (the files stay attached; /file - drops them)")
                return
        if self._editing is not None:
            back, self._editing, self._before_edit = self._editing, None, ()
            try:
                self.session.rewind(back)
            except LlmcliError as error:
                self.session.view.warn(f"{error}; not sent")
                return
        self.pending = ()
        await self._cancellable(self.session.ask(text, files))

    async def _cancellable(self, work: Awaitable[T]) -> T | None:
        """Run an answer; Ctrl-C cancels it (the session keeps the partial answer)."""
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            self._interrupted = True
            task.cancel()

        self._interrupted = False
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not Unix / main thread
            loop.add_signal_handler(signal.SIGINT, interrupt)
        current = asyncio.current_task()
        try:
            result = await task
        except asyncio.CancelledError:
            if current is not None and current.cancelling():
                raise  # the REPL itself is being cancelled
            return None
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
        if current is not None and current.cancelling():
            # The REPL was cancelled (a signal ending the chat) while the answer, which
            # keeps what arrived, swallowed the cancellation: the chat must still end.
            raise asyncio.CancelledError
        return result

    # -- slash commands ---------------------------------------------------------------------

    async def _transaction(self, call: slash.SlashCall) -> None:
        """Run one slash command; when it fails, the chat is left exactly as it was."""
        conversation = self.session.conversation
        before = (conversation.settings(), self.home, self.model_names, self._next_message)
        role, role_base, sampling = self.role, dict(self._role_base), conversation.sampling
        try:
            await self._slash(call)
        except LlmcliError as error:
            settings, self.home, self.model_names, self._next_message = before
            conversation.restore(settings)
            self.role, self._role_base, conversation.sampling = role, role_base, sampling
            self.session.view.warn(str(error))

    async def _slash(self, call: slash.SlashCall) -> None:
        session, view, arg = self.session, self.session.view, call.argument
        conversation = session.conversation
        match call.name:
            case "help":
                view.info(slash.help_text())
            case "exit":
                self._done = True
            case "model":
                if arg:
                    routed = None if self.route_model is None else self.route_model(self.home, arg)
                    if routed is not None:
                        session.set_profile(routed)
                        self._reload_model_names()
                    session.set_model(arg)
                else:
                    view.info(session.model_text())
            case "profile":
                if arg:
                    session.set_profile(self.load_profile(arg))
                    self.home = arg
                    self._reload_model_names()
                else:
                    view.info(session.backend_text())
            case "system":
                if arg == "-":
                    session.set_system(None)
                elif arg:
                    session.set_system(arg)
                else:
                    view.info(f"system prompt: {conversation.system or '(none)'}")
            case "reasoning":
                if not arg:
                    view.info(describe_reasoning(conversation.reasoning))
                    return
                mode = parse_reasoning(arg)
                if mode is None:
                    raise UsageError(f"/reasoning {arg}: {REASONING_USAGE}")
                conversation.reasoning = mode
                view.info(describe_reasoning(mode))
            case "retry":
                await self._cancellable(session.retry())
            case "undo":
                back = _count(arg, "/undo")
                session.rewind(back)
                gone = "gone (not logged)" if session.store is None else "kept as a branch"
                view.info(f"dropped the last {_plural(back, 'exchange', one='')}; {gone}")
            case "edit-last":
                back = _count(arg, "/edit-last")
                message = session.user_message(back)
                self._next_message = message.typed
                self._editing = back
                view.info("edit it, Enter sends it as a new branch (Ctrl-C: no edit)")
                if message.files or message.lost_images:
                    view.info(self._reattach(message))
            case "branches":
                view.info("\n".join(branch_lines(session.branches())))
            case "branch":
                end = session.switch_branch(_count(arg, "/branch", default=None))
                count = _plural(len(conversation.messages), "message")
                view.info(f"on the branch ending at message {end} ({count})")
            case "edit":
                # The edited text becomes the next prompt's input: read it, press Enter.
                self._next_message = edit_in_editor(self._next_message or "")
            case "clear":
                session.clear()
            case "save":
                if not arg:
                    raise UsageError("/save needs a file name: /save chat.md or /save chat.json")
                view.info(f"saved {session.save(Path(arg))}")
            case "cache":
                view.info(await cache_command_on(session.client(), arg))
            case "usage":
                view.info(session.usage_text())
            case "file":
                self._attach(arg)
            case "role":
                await self._switch_role(arg)
            case "copy":
                view.info(self._copy(arg))

    def _copy(self, argument: str) -> str:
        """``/copy``: the last answer; ``/copy N``: its N-th fenced code block."""
        from llmcli.ui.chatview import TerminalChatView

        view = self.session.view
        terminal = view.console.file if isinstance(view, TerminalChatView) else None
        answer = self.session.conversation.last_answer
        if not argument or not answer:
            return copy_to_clipboard(answer, terminal=terminal)
        number = _count(argument, "/copy", default=None)
        blocks = code_blocks(answer)
        if number > len(blocks):
            raise UsageError(
                f"/copy {number}: the last answer has {_plural(len(blocks), 'code block')}"
                + ("; /copy alone copies all of it" if not blocks else "")
            )
        copied = copy_to_clipboard(blocks[number - 1].code, terminal=terminal, what="code")
        return f"code block {number}: {copied}"

    def _reattach(self, message: SentMessage) -> str:
        """Attach an edited message's files again (until the edit is sent or given up);
        one line saying which, and which images must be attached anew."""
        self._before_edit = self.pending
        names = {file.name for file in message.files}
        self.pending = (*message.files, *(f for f in self.pending if f.name not in names))
        said = []
        if message.files:
            listed = ", ".join(file.name for file in message.files)
            said.append(f"its files are attached again: {listed} (/file - drops them)")
        for name in message.lost_images:
            said.append(f"{name} was an image, which the history does not keep: /file {name}")
        return "; ".join(said)

    def _cancel_edit(self) -> None:
        """The edit is given up: the files it attached again go, what was pending stays."""
        if self._editing is not None:
            self.pending = self._before_edit
        self._editing = None
        self._before_edit = ()

    def _attach(self, argument: str) -> None:
        """``/file PATH...`` adds files for the next message; ``/file`` says which; ``-`` drops."""
        view = self.session.view
        if argument == "-":
            self.pending = ()
            view.info("no files attached")
            return
        if argument:
            try:
                patterns = shlex.split(argument)
            except ValueError as error:
                raise UsageError(f"/file {argument}: {error}; quote names with spaces") from None
            added = load_attachments(patterns)
            names = {file.name for file in added}
            self.pending = (*(f for f in self.pending if f.name not in names), *added)
        if not self.pending:
            view.info("no files attached; /file PATH... attaches some (globs work)")
            return
        listed = ", ".join(file.describe() for file in self.pending)
        view.info(f"attached to your next message: {listed} (/file - drops them)")

    async def _switch_role(self, name: str) -> None:
        """``/role NAME``: its profile and model (as /profile and /model), system prompt and
        sampling, in place of the role that was on; ``/role -`` drops the role; ``/role``
        says which role is on."""
        from dataclasses import replace

        from llmcli.config.roles import check_role_profile, load_roles

        view = self.session.view
        if not name:
            view.info(_role_line(self.role) if self.role else "no role; /role NAME")
            return
        if name == "-":
            dropped = self.role
            if dropped is None:
                view.info("no role was on; /role NAME picks one")
                return
            self._drop_role()
            view.info(
                f"role {dropped.name} dropped: its system prompt and sampling are gone;"
                " the profile and model stay"
            )
            return
        role = load_roles().get(name)
        check_role_profile(role, None, self.profile_names, instead="switch with /profile")
        if role.profile:
            await self._slash(slash.SlashCall("profile", role.profile))
        if role.model:
            await self._slash(slash.SlashCall("model", role.model))
        self._drop_role(announce=not role.system)  # the last role's prompt and sampling go
        conversation = self.session.conversation
        self._role_base = {"system": conversation.system}
        if role.system:
            self.session.set_system(role.system)
        sampling = {key: getattr(role, key) for key in _ROLE_SAMPLING if _sets(role, key)}
        self._role_base.update({key: getattr(conversation.sampling, key) for key in sampling})
        conversation.sampling = replace(conversation.sampling, **sampling)
        self.role = role
        view.info(_role_line(role))

    def _drop_role(self, *, announce: bool = True) -> None:
        """Undo what the role on set: its system prompt and each sampling value, where they
        still hold the role's value (one set since, by /system, stays); profile and model
        stay, as after /profile and /model."""
        from dataclasses import replace

        role, self.role = self.role, None
        if role is None:
            return
        conversation, base = self.session.conversation, self._role_base
        if role.system and conversation.system == role.system:
            self.session.set_system(_base_value(base, "system"), announce=announce)
        back = {
            key: _base_value(base, key)
            for key in _ROLE_SAMPLING
            if _sets(role, key) and getattr(conversation.sampling, key) == getattr(role, key)
        }
        conversation.sampling = replace(conversation.sampling, **back)
        self._role_base = {}

    # -- prompt-toolkit -------------------------------------------------------------------

    def _prompt_text(self) -> FormattedText:
        conversation = self.session.conversation
        model = conversation.model or conversation.profile.model or conversation.profile.name
        files = f"+{len(self.pending)} file{'s' if len(self.pending) > 1 else ''} "
        return FormattedText(
            [
                ("class:model", f"{model} "),
                *([("class:files", files)] if self.pending else []),
                ("class:arrow", "› "),
            ]
        )

    def _take_next(self) -> str:
        text, self._next_message = self._next_message, None
        return text or ""

    def _prompt_session(self) -> PromptSession[str]:
        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        @bindings.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            buffer = event.current_buffer
            if buffer.text and self._editing is None:
                buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt())

        history: History = (
            FileHistory(str(_private_file(self.history_path)))
            if self.history_path
            else InMemoryHistory()
        )
        return PromptSession(
            history=history,
            key_bindings=bindings,
            completer=SlashCompleter(self),
            complete_while_typing=False,
            multiline=False,
            prompt_continuation=lambda width, line, wrap: "… ".rjust(width),
            style=Style.from_dict(
                {"model": "ansibrightblack", "files": "ansiyellow", "arrow": "ansicyan bold"}
            ),
            enable_open_in_editor=False,
        )

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _reload_model_names(self) -> None:
        self.model_names = []
        if self._completing:
            self._spawn(self._load_model_names())

    async def _load_model_names(self) -> None:
        try:
            models = await self.session.client().list_models()
        except LlmcliError:
            models = []
        self.model_names = [model.id for model in models]


class SlashCompleter(Completer):
    """Tab completes slash commands, model names, profile names and /reasoning modes."""

    def __init__(self, repl: Repl) -> None:
        self.repl = repl

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        name, space, partial = text[1:].partition(" ")
        if not space:
            for command in slash.COMMANDS:
                if command.name.startswith(name):
                    yield Completion(
                        "/" + command.name, start_position=-len(text), display_meta=command.help
                    )
            return
        options: list[str] = []
        if name == "model":
            options = self.repl.model_names
        elif name == "profile":
            options = self.repl.profile_names
        elif name == "role":
            options = _role_names()
        elif name == "file":  # the last path typed so far
            last = Document(partial.rpartition(" ")[2])
            yield from PathCompleter(expanduser=True).get_completions(last, complete_event)
        elif name in slash.BY_NAME:
            options = list(slash.BY_NAME[name].choices)
        for option in options:
            if option.startswith(partial):
                yield Completion(option, start_position=-len(partial))


def _role_names() -> list[str]:
    """The roles Tab offers after /role; none when the roles file is broken."""
    from llmcli.config.roles import load_roles

    try:
        return list(load_roles().roles)
    except LlmcliError:
        return []


async def cache_command(profile: Profile, argument: str) -> str:
    """Run :func:`cache_command_on` on a client of its own for ``profile``, then close it."""
    async with Client(profile) as client:
        return await cache_command_on(client, argument)


async def cache_command_on(client: Client, argument: str) -> str:
    """``/cache save NAME`` or ``/cache restore NAME``: one line saying what was done."""
    from llmcli.local import slots

    verb, _, name = argument.partition(" ")
    name = name.strip()
    if verb not in slash.BY_NAME["cache"].choices or not name:
        raise UsageError("use /cache save NAME or /cache restore NAME")
    if verb == "save":
        result = await slots.save_slot(client, name)
    else:
        result = await slots.restore_slot(client, name)
    return result.describe()


def _role_line(role: Role) -> str:
    """``role: reviewer (system prompt, temperature 0.2)``, and that a template goes unused."""
    unused = "; its prompt template is for complete" if role.prompt else ""
    return f"role: {role.name} ({role.summary()}){unused}"


_ROLE_SAMPLING = ("temperature", "top_p", "max_tokens", "seed", "stop")


def _sets(role: Role, key: str) -> bool:
    return getattr(role, key) not in (None, ())


def _base_value(base: dict[str, object], key: str) -> Any:
    """What ``key`` was before the role (unset when the role came with the chat)."""
    return base.get(key, () if key == "stop" else None)


def _count(argument: str, command: str, *, default: int | None = 1) -> int:
    """The number a command was given (``default`` when none): a whole number from 1."""
    if not argument and default is not None:
        return default
    if not argument.isdigit() or int(argument) < 1:
        raise UsageError(f"{command} takes a number from 1: {command} 2")
    return int(argument)


def _plural(number: int, noun: str, *, one: str = "1 ") -> str:
    return f"{one}{noun}" if number == 1 else f"{number} {noun}s"


def _private_file(path: Path) -> Path:
    """``path``, created owner-only if new: typed input can hold secrets pasted by mistake."""
    try:
        create_private_file(path)
    except OSError as error:
        raise LlmcliError(
            f"cannot create the input history {path}: {error.strerror or error}"
        ) from None
    return path


def edit_in_editor(initial: str) -> str | None:
    """Open $VISUAL/$EDITOR on a temporary file; return what was written there."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", delete=False, encoding="utf-8") as handle:
        handle.write(initial)
        name = handle.name
    try:
        try:
            subprocess.run([*shlex.split(editor), name], check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            raise UsageError(f"could not run the editor {editor!r}: {error}; set $EDITOR") from None
        text = Path(name).read_text(encoding="utf-8").rstrip("\n")
    finally:
        os.unlink(name)
    return text or None
