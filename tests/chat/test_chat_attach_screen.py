"""``/file`` and ``/role`` as a user meets them: the real REPL in a tmux pane against llmcli's
mock server, whose recorded requests show what was sent. ``chat -a`` and ``--role`` in a
scripted chat (stdin piped) are checked too, through the CLI."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles
from test_chat_screen import PROMPT, Screen, screen  # noqa: F401 - the tmux harness and fixture
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import MockConfig, MockServerThread
from llmcli.storage.store import Store, default_path

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
ROLES = '[roles.terse]\nsystem = "Be terse."\ntemperature = 0.1\ndescription = "short answers"\n'


def chat_bodies(mock: MockServerThread) -> list[dict[str, Any]]:
    return [r.body for r in mock.server.requests if r.path.endswith("/chat/completions")]


def wait_for_count(shown: Screen, text: str, count: int, timeout: float = 20) -> None:
    """Until ``text`` is on ``count`` lines of the screen."""
    deadline = time.monotonic() + timeout
    while sum(text in line for line in shown.lines()) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not {count} times:\n" + "\n".join(shown.lines()))
        time.sleep(0.05)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "notes.md").write_text("hello ```x```\n")
    (folder / "shot.png").write_bytes(PNG)
    roles = tmp_path / "config" / "llmcli" / "roles.toml"  # the pane's XDG_CONFIG_HOME
    roles.parent.mkdir(parents=True)
    roles.write_text(ROLES)
    return folder


def test_file_and_role_in_a_real_terminal(
    screen: Callable[..., Screen],  # noqa: F811 - the fixture imported above
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)  # the pane starts here: names are short
    with MockServerThread(MockConfig(default_max_tokens=5)) as mock:
        shown = screen(100, 30, base_url=mock.base_url)
        shown.type("/file notes.md *.png")
        shown.keys("Enter")
        shown.wait_for(
            r"attached to your next message: notes\.md \(14 bytes, text\), shot\.png \(32 bytes,"
        )
        shown.wait_for(r"^big-pickle \+2 files ›")  # the prompt says files are pending
        shown.type("/file missing.txt")
        shown.keys("Enter")
        shown.wait_for(r"missing\.txt: no such file")
        shown.type("/role tarse")
        shown.keys("Enter")
        shown.wait_for(r"unknown role 'tarse' \(did you mean 'terse'\?\)")
        shown.type("/role terse")
        shown.keys("Enter")
        shown.wait_for(r"role: terse \(system prompt, temperature 0\.1\)")
        shown.type("/role")
        shown.keys("Enter")
        wait_for_count(shown, "role: terse (system prompt, temperature 0.1)", 2)
        assert chat_bodies(mock) == []  # nothing was sent yet
        shown.type("what is this?")
        shown.keys("Enter")
        lines = shown.wait_for_prompt(1 + 1)  # the pending prompt line was not PROMPT
        last = [line for line in lines if line][-1]
        assert last.startswith(PROMPT), "the files went; the prompt no longer shows them"
        (body,) = chat_bodies(mock)
        assert body["temperature"] == 0.1
        system, user = body["messages"]
        assert system == {"role": "system", "content": "Be terse."}
        text, image = user["content"]
        assert text["text"] == (
            "what is this?\n\nFile: notes.md\n````\nhello ```x```\n````\n\nImage: shot.png"
        )
        assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode(
            "ascii"
        )
        shown.type("and again")
        shown.keys("Enter")
        shown.wait_for_prompt(3)
        assert chat_bodies(mock)[1]["messages"][-1] == {"role": "user", "content": "and again"}


def test_file_dash_drops_what_is_pending(
    screen: Callable[..., Screen],  # noqa: F811
    files: Path,
) -> None:
    with MockServerThread(MockConfig(default_max_tokens=5)) as mock:
        shown = screen(100, 30, base_url=mock.base_url)
        shown.type(f"/file {files}/notes.md")
        shown.keys("Enter")
        shown.wait_for(r"^big-pickle \+1 file ›")
        shown.type("/file -")
        shown.keys("Enter")
        shown.wait_for(r"no files attached")
        shown.type("hi")
        shown.keys("Enter")
        shown.wait_for_prompt(3)
        assert chat_bodies(mock)[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_chat_attach_and_role_in_a_scripted_chat(
    files: Path, write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCLI_ROLES", str(files.parent / "config" / "llmcli" / "roles.toml"))
    monkeypatch.chdir(files)
    with MockServerThread(MockConfig(default_max_tokens=5)) as mock:
        write_profiles(f'[profiles.m]\nbase_url = "{mock.base_url}"\ndialect = "zen"\n')
        result = CliRunner().invoke(
            app,
            ["chat", "-p", "m", "-m", "big-pickle", "-a", "notes.md", "--role", "terse"],
            input="first\n/role\nsecond\n",
        )
        assert result.exit_code == 0, result.stderr
        first, second = chat_bodies(mock)
    assert first["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "first\n\nFile: notes.md\n````\nhello ```x```\n````"},
    ]
    assert first["temperature"] == 0.1 and second["temperature"] == 0.1
    assert second["messages"][-1] == {"role": "user", "content": "second"}
    assert "role: terse (system prompt, temperature 0.1)" in result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-a", "missing.txt"], "llmcli: error: missing.txt: no such file\n"),
        (["--role", "nope"], "llmcli: error: unknown role 'nope'; known: commit-message,"),
    ],
)
def test_chat_refuses_bad_files_and_roles_before_starting(
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    line: str,
) -> None:
    monkeypatch.chdir(files)
    result = CliRunner().invoke(app, ["chat", *args], input="hi\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(line) and len(result.stderr.splitlines()) == 1


def test_a_chat_image_for_a_server_without_vision_is_refused_and_nothing_kept(
    files: Path, write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(files)
    with MockServerThread(MockConfig(dialect="llamacpp", default_max_tokens=3)) as mock:
        write_profiles(f'[profiles.m]\nbase_url = "{mock.base_url}"\ndialect = "llamacpp"\n')
        result = CliRunner().invoke(
            app, ["chat", "-p", "m", "-a", "shot.png"], input="what is it?\n/file\nplain\n"
        )
        bodies = chat_bodies(mock)
    assert result.exit_code == 0, result.stderr
    assert (
        "llmcli: shot.png is an image, and the server of profile 'm' says its model has no"
        " vision (llama-server needs a vision model and --mmproj); nothing was sent"
        " (the files stay attached; /file - drops them)"
    ) in result.stderr.splitlines()
    assert "attached to your next message: shot.png (32 bytes, image/png)" in result.stderr
    assert [body["messages"] for body in bodies] == []
    with Store.open(default_path()) as store:
        assert store.latest() is None  # the refused message was not logged


def test_role_dash_drops_the_role_and_a_new_role_replaces_the_last(
    files: Path, write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    roles = files.parent / "config" / "llmcli" / "roles.toml"
    roles.write_text(ROLES + '[roles.loud]\nsystem = "Shout."\ntop_p = 0.5\n')
    monkeypatch.setenv("LLMCLI_ROLES", str(roles))
    with MockServerThread(MockConfig(default_max_tokens=2)) as mock:
        write_profiles(f'[profiles.m]\nbase_url = "{mock.base_url}"\ndialect = "zen"\n')
        result = CliRunner().invoke(
            app,
            ["chat", "-p", "m", "-m", "big-pickle", "-s", "Base.", "--temperature", "0.7"],
            input="/role terse\nfirst\n/role loud\nsecond\n/role -\nthird\n/role -\n/role\n",
        )
        assert result.exit_code == 0, result.stderr
        bodies = chat_bodies(mock)
    sent = [(b["messages"][0]["content"], b.get("temperature"), b.get("top_p")) for b in bodies]
    assert sent == [
        ("Be terse.", 0.1, None),
        ("Shout.", 0.7, 0.5),  # terse's temperature went with it; loud sets none
        ("Base.", 0.7, None),  # what the chat had before any role
    ]
    notes = [line for line in result.stderr.splitlines() if line.startswith("llmcli: ")]
    assert notes[-3:] == [
        "llmcli: role loud dropped: its system prompt and sampling are gone;"
        " the profile and model stay",
        "llmcli: no role was on; /role NAME picks one",
        "llmcli: no role; /role NAME",
    ]


def test_edit_last_attaches_the_message_files_again(
    screen: Callable[..., Screen],  # noqa: F811
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    with MockServerThread(MockConfig(default_max_tokens=3)) as mock:
        shown = screen(100, 30, base_url=mock.base_url)
        shown.type("/file notes.md shot.png")
        shown.keys("Enter")
        shown.wait_for(r"^big-pickle \+2 files ›")
        shown.type("what is this?")
        shown.keys("Enter")
        shown.wait_for_prompt(2)  # the first prompt, where /file was typed, is one
        shown.type("/edit-last")
        shown.keys("Enter")
        shown.wait_for(r"its files are attached again: notes\.md, shot\.png \(/file - drops them\)")
        # Only what was typed comes back to the prompt; the files are pending, as /file left them.
        shown.wait_for(r"^big-pickle \+2 files › what is this\?$")
        shown.type(" And now?")
        shown.keys("Enter")
        shown.wait_for_prompt(3)
        first, edited = chat_bodies(mock)
        (message,) = edited["messages"]  # a new branch: the old exchange is not sent
        text, image = message["content"]
        assert text["text"] == (
            "what is this? And now?\n\nFile: notes.md\n````\nhello ```x```\n````\n\nImage: shot.png"
        )
        assert image == first["messages"][0]["content"][1]  # the same image, from memory
        # Ctrl-C gives an edit up, and the files it attached again with it.
        shown.type("/edit-last")
        shown.keys("Enter")
        shown.wait_for(r"^big-pickle \+2 files › what is this\? And now\?$")
        shown.keys("C-c")
        shown.wait_for("edit cancelled; nothing changed")
        shown.wait_for_prompt(4)  # no files pending: the plain prompt again
        shown.type("plain")
        shown.keys("Enter")
        shown.wait_for_prompt(5)
        assert chat_bodies(mock)[-1]["messages"][-1] == {"role": "user", "content": "plain"}


def test_edit_last_in_a_continued_chat_says_which_images_to_attach_again(
    files: Path, write_profiles: WriteProfiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(files)
    with MockServerThread(MockConfig(default_max_tokens=2)) as mock:
        write_profiles(f'[profiles.m]\nbase_url = "{mock.base_url}"\ndialect = "zen"\n')
        chat = ["chat", "-p", "m", "-m", "big-pickle"]
        first = CliRunner().invoke(app, [*chat, "-a", "notes.md", "-a", "shot.png"], input="hi\n")
        assert first.exit_code == 0, first.stderr
        with Store.open(default_path()) as store:
            latest = store.latest()
            assert latest is not None and latest.title == "hi"  # not the file's text
        again = CliRunner().invoke(app, [*chat, "-c"], input="/edit-last\nedited\n")
        assert again.exit_code == 0, again.stderr
        bodies = chat_bodies(mock)
    assert (
        "llmcli: its files are attached again: notes.md (/file - drops them);"
        " shot.png was an image, which the history does not keep: /file shot.png"
    ) in again.stderr.splitlines()
    # What was typed is replaced; the text file goes again as it was sent.
    assert bodies[-1]["messages"] == [
        {"role": "user", "content": "edited\n\nFile: notes.md\n````\nhello ```x```\n````"}
    ]


def test_enter_on_an_empty_prompt_sends_nothing(
    screen: Callable[..., Screen],  # noqa: F811
    tmp_path: Path,
) -> None:
    with MockServerThread(MockConfig(default_max_tokens=3)) as mock:
        shown = screen(100, 30, base_url=mock.base_url)
        shown.keys("Enter")
        shown.wait_for_prompt(2)
        shown.type("   ")
        shown.keys("Enter")
        shown.wait_for_prompt(3)
        shown.type("hi")
        shown.keys("Enter")
        shown.wait_for_prompt(4)
        assert [body["messages"] for body in chat_bodies(mock)] == [
            [{"role": "user", "content": "hi"}]
        ]
        with Store.open(tmp_path / "data" / "history.db") as store:  # the pane's history
            latest = store.latest()
            assert latest is not None
            assert [m.content for m in store.get(latest.id).messages][:1] == ["hi"]


def test_a_chat_started_with_a_role_says_so(
    screen: Callable[..., Screen],  # noqa: F811
) -> None:
    with MockServerThread(MockConfig(default_max_tokens=3)) as mock:
        shown = screen(120, 30, "--role", "summarise", base_url=mock.base_url)
        shown.wait_for(
            r"^role: summarise \(system prompt, prompt template, temperature 0\.2\);"
            r" its prompt template is for complete$"
        )
