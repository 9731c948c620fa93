"""``complete -a`` and ``--role`` through the real CLI: against llmcli's mock server run as a
user runs it (its ``--log`` shows the very body it received), against the real llama-server,
and every bad input as one line on stderr with exit 2 and nothing on stdout."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles, mock_server_process
from rig import LlamaServer
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.storage.store import Store, default_path

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def refused(result: Any) -> str:
    """The one error line of a refused command (exit 2, nothing on stdout)."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmcli: error: "), result.stderr
    return lines[0].removeprefix("llmcli: error: ")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    (folder / "notes.md").write_text("# Notes\n```sh\nmake\n```\n")
    (folder / "todo.txt").write_text("buy milk\n")
    (folder / "shot.png").write_bytes(PNG)
    (folder / "blob.bin").write_bytes(b"\x7fELF\x00\x01")
    return folder


@pytest.fixture
def roles_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "roles.toml"
    monkeypatch.setenv("LLMCLI_ROLES", str(path))
    return path


class Mock:
    def __init__(self, log: Path) -> None:
        self.log = log

    def chat_bodies(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        records = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r["body"] for r in records if r["path"] == "/v1/chat/completions"]

    def paths(self) -> list[str]:
        return [json.loads(line)["path"] for line in self.log.read_text().splitlines()]


def _mock(
    tmp_path: Path, write_profiles: WriteProfiles, dialect: str, model: str
) -> Iterator[Mock]:
    log = tmp_path / f"{dialect}.jsonl"
    with mock_server_process("--dialect", dialect, "--log", str(log)) as (_process, url):
        write_profiles(
            f'[profiles.mock]\nbase_url = "{url}"\ndialect = "{dialect}"\nmodel = "{model}"\n'
            f'[profiles.other]\nbase_url = "{url}"\ndialect = "{dialect}"\nmodel = "{model}"\n'
        )
        yield Mock(log)


@pytest.fixture
def zen_mock(tmp_path: Path, write_profiles: WriteProfiles) -> Iterator[Mock]:
    yield from _mock(tmp_path, write_profiles, "zen", "big-pickle")


@pytest.fixture
def llamacpp_mock(tmp_path: Path, write_profiles: WriteProfiles) -> Iterator[Mock]:
    yield from _mock(tmp_path, write_profiles, "llamacpp", "mock-llama")


# -- attachments against the mock server ----------------------------------------------------


def test_text_files_go_fenced_and_images_as_parts(workdir: Path, zen_mock: Mock) -> None:
    result = invoke("complete", "-p", "mock", "-a", "*.md", "-a", "shot.png", "what is this?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() and result.stderr == ""
    (body,) = zen_mock.chat_bodies()
    (message,) = body["messages"]
    text, image = message["content"]
    assert text == {
        "type": "text",
        "text": "what is this?\n\nFile: notes.md\n````\n# Notes\n```sh\nmake\n```\n````"
        "\n\nImage: shot.png",
    }
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url[22:]) == PNG
    assert "/props" not in zen_mock.paths()  # zen is not asked whether it sees


def test_the_history_records_the_text_and_the_files_never_image_bytes(
    workdir: Path, zen_mock: Mock
) -> None:
    assert invoke("complete", "-p", "mock", "-a", "todo.txt", "-a", "shot.png", "hi").exit_code == 0
    with Store.open(default_path()) as store:
        stored = store.get(store.latest().id)  # type: ignore[union-attr]
    user = stored.messages[0]
    assert user.content == "hi\n\nFile: todo.txt\n```\nbuy milk\n```\n\nImage: shot.png"
    assert [(a.name, a.mime, a.bytes) for a in user.attachments] == [
        ("todo.txt", "text/plain", 9),
        ("shot.png", "image/png", len(PNG)),
    ]
    raw = default_path().read_bytes()
    assert base64.b64encode(PNG[:18]) not in raw and PNG[:8] not in raw


def test_history_titles_name_what_was_typed_or_the_files_never_their_text(
    workdir: Path, zen_mock: Mock
) -> None:
    assert invoke("complete", "-p", "mock", "-a", "notes.md", "what is this?").exit_code == 0
    assert invoke("complete", "-p", "mock", "-a", "todo.txt", "-a", "shot.png").exit_code == 0
    result = invoke("history", "list", "--json")
    assert result.exit_code == 0, result.stderr
    assert [c["title"] for c in json.loads(result.stdout)] == [
        "todo.txt, shot.png",
        "what is this?",
    ]


def test_files_alone_need_no_prompt(workdir: Path, zen_mock: Mock) -> None:
    assert invoke("complete", "-p", "mock", "-a", "todo.txt").exit_code == 0
    (body,) = zen_mock.chat_bodies()
    assert body["messages"][0]["content"] == "File: todo.txt\n```\nbuy milk\n```"


def test_stdin_and_files_go_together(workdir: Path, zen_mock: Mock) -> None:
    result = invoke("complete", "-p", "mock", "-a", "todo.txt", "summarise", input="piped\n")
    assert result.exit_code == 0, result.stderr
    (body,) = zen_mock.chat_bodies()
    assert body["messages"][0]["content"] == (
        "summarise\n\npiped\n\nFile: todo.txt\n```\nbuy milk\n```"
    )


def test_an_image_for_a_llamacpp_server_without_vision_is_refused_before_sending(
    workdir: Path, llamacpp_mock: Mock
) -> None:
    line = refused(invoke("complete", "-p", "mock", "-a", "shot.png", "what is it?"))
    assert line == (
        "shot.png is an image, and the server of profile 'mock' says its model has no vision"
        " (llama-server needs a vision model and --mmproj); nothing was sent"
    )
    assert llamacpp_mock.chat_bodies() == []
    assert llamacpp_mock.paths() == ["/props"]


# -- bad input: one line, exit 2, nothing sent -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-a", "missing.txt", "q"], "missing.txt: no such file"),
        (["-a", "*.pdf", "q"], "*.pdf: no file matches"),
        (
            ["-a", "blob.bin", "q"],
            "blob.bin: a binary file (a NUL byte at offset 4); only text (UTF-8) and PNG,"
            " JPEG, GIF or WebP images can be attached",
        ),
        (["-a", ".", "q"], ".: a directory; attach its files (e.g. ./*.md)"),
        (
            ["--text", "-a", "shot.png", "q"],
            "--text sends plain text: images cannot go with it; drop --text",
        ),
    ],
)
def test_bad_attachments_are_one_line(
    workdir: Path, zen_mock: Mock, args: list[str], line: str
) -> None:
    assert refused(invoke("complete", "-p", "mock", *args)) == line
    assert zen_mock.chat_bodies() == []


def test_an_oversized_file_says_the_cap_and_how_to_raise_it(
    workdir: Path, zen_mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCLI_MAX_INPUT", "4")
    line = refused(invoke("complete", "-p", "mock", "-a", "todo.txt", "q"))
    assert line == (
        "todo.txt: 9 bytes, more than the 4 bytes a file may have; attach less, or raise"
        " LLMCLI_MAX_INPUT (e.g. LLMCLI_MAX_INPUT=64M)"
    )


# -- roles against the mock server ----------------------------------------------------------


def test_a_role_brings_its_system_prompt_sampling_and_profile(
    workdir: Path, zen_mock: Mock, roles_file: Path
) -> None:
    roles_file.write_text(
        '[roles.terse]\nsystem = "Be terse."\nprofile = "other"\ntemperature = 0.1\n'
        'max_tokens = 5\nstop = ["END"]\nprompt = "Q: {input} {{literal}}"\n'
    )
    result = invoke("complete", "--role", "terse", "--json", "-m", "big-pickle", "why?")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["profile"] == "other"
    (body,) = zen_mock.chat_bodies()
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Q: why? {literal}"},
    ]
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.1, 5, ["END"])


def test_the_command_line_wins_over_the_role(
    workdir: Path, zen_mock: Mock, roles_file: Path
) -> None:
    roles_file.write_text('[roles.terse]\nsystem = "Be terse."\ntemperature = 0.1\n')
    args = ("complete", "-p", "mock", "-r", "terse", "-s", "Be kind.", "--temperature", "0")
    assert invoke(*args, "hi").exit_code == 0
    (body,) = zen_mock.chat_bodies()
    assert body["messages"][0] == {"role": "system", "content": "Be kind."}
    assert body["temperature"] == 0


def test_piped_input_fills_the_placeholder_and_is_never_expanded(
    workdir: Path, zen_mock: Mock
) -> None:
    diff = "- a = {input}\n+ a = {0.__class__}\n"
    result = invoke("complete", "-p", "mock", "--role", "commit-message", input=diff)
    assert result.exit_code == 0, result.stderr
    (body,) = zen_mock.chat_bodies()
    assert body["messages"][1]["content"] == (
        "Write a commit message for this change:\n\n- a = {input}\n+ a = {0.__class__}"
    )
    assert body["temperature"] == 0.2


def test_attached_files_are_the_input_of_a_role(workdir: Path, zen_mock: Mock) -> None:
    assert invoke("complete", "-p", "mock", "--role", "summarise", "-a", "todo.txt").exit_code == 0
    (body,) = zen_mock.chat_bodies()
    assert body["messages"][1]["content"] == (
        "Summarise the following in at most five bullet points:\n\n"
        "File: todo.txt\n```\nbuy milk\n```"
    )


@pytest.mark.parametrize(
    ("roles", "args", "line"),
    [
        (
            "",
            ["--role", "sumarise", "q"],
            "unknown role 'sumarise' (did you mean 'summarise'?); known: commit-message,"
            " summarise (add roles to {file})",
        ),
        (
            "[roles.x]\ntemprature = 1\n",
            ["--role", "x", "q"],
            "{file}: unknown field 'temprature' in role 'x' (did you mean 'temperature'?)",
        ),
        (
            "[roles.x\n",
            ["--role", "x", "q"],
            "{file}: line 1, column 9: Expected ']' at the end of a table declaration",
        ),
        (
            "",
            ["--role", "summarise"],
            "role 'summarise' puts your input into its prompt: pipe some (cat notes.txt |"
            " llmcli complete --role summarise), give it as an argument, or attach a file"
            " (-a FILE)",
        ),
    ],
)
def test_bad_roles_are_one_line(
    workdir: Path, zen_mock: Mock, roles_file: Path, roles: str, args: list[str], line: str
) -> None:
    roles_file.write_text(roles)
    assert refused(invoke("complete", "-p", "mock", *args)) == line.format(file=roles_file)
    assert zen_mock.chat_bodies() == []


def test_a_role_naming_a_missing_profile_says_which_role_and_file(
    workdir: Path, zen_mock: Mock, roles_file: Path
) -> None:
    roles_file.write_text('[roles.away]\nprofile = "mokc"\nsystem = "Be brief."\n')
    head = "role 'away' uses profile 'mokc', which is not defined (did you mean 'mock'?); known: "
    for command in (["complete", "q"], ["chat"]):
        line = refused(invoke(*command[:1], "--role", "away", *command[1:], input="hi\n"))
        assert line.startswith(head) and line.endswith(
            f"(fix the role in {roles_file}, or give -p PROFILE)"
        )
    assert invoke("complete", "--role", "away", "-p", "mock", "q").exit_code == 0  # -p wins
    chat = invoke("chat", "-p", "mock", input="/role away\n/role\n")
    assert chat.exit_code == 0, chat.stderr
    notes = chat.stderr.splitlines()
    assert notes[0].startswith("llmcli: " + head)
    assert notes[0].endswith(f"(fix the role in {roles_file}, or switch with /profile)")
    assert notes[1:] == ["llmcli: no role; /role NAME"]  # nothing changed
    assert zen_mock.chat_bodies()[0]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_a_broken_roles_file_does_not_stop_commands_without_a_role(
    workdir: Path, zen_mock: Mock, roles_file: Path
) -> None:
    roles_file.write_text("[roles.x\n")
    assert invoke("complete", "-p", "mock", "hi").exit_code == 0


# -- the real llama-server ------------------------------------------------------------------


@pytest.fixture
def tiny(write_profiles: WriteProfiles, llama_plain: LlamaServer) -> str:
    write_profiles(f'[profiles.tiny]\nbase_url = "{llama_plain.base_url}"\n')
    return "tiny"


def _usage(result: Any) -> dict[str, int]:
    assert result.exit_code == 0, result.stderr
    usage: dict[str, int] = json.loads(result.stdout)["usage"]
    return usage


def test_llama_server_reads_an_attached_file(workdir: Path, tiny: str) -> None:
    (workdir / "long.txt").write_text("word " * 60)
    plain = _usage(invoke("complete", "-p", tiny, "--json", "--max-tokens", "2", "q"))
    attached = _usage(
        invoke("complete", "-p", tiny, "--json", "--max-tokens", "2", "-a", "long.txt", "q")
    )
    assert attached["prompt_tokens"] >= plain["prompt_tokens"] + 250


def test_llama_server_without_mmproj_gets_no_image(workdir: Path, tiny: str) -> None:
    line = refused(invoke("complete", "-p", tiny, "-a", "shot.png", "what is it?"))
    assert "says its model has no vision" in line


def test_a_role_on_llama_server(workdir: Path, tiny: str, roles_file: Path) -> None:
    roles_file.write_text('[roles.short]\nprofile = "tiny"\nmax_tokens = 3\nsystem = "Be brief."\n')
    result = invoke("complete", "--role", "short", "--json", "hi")
    usage = _usage(result)
    assert usage["completion_tokens"] == 3
    assert json.loads(result.stdout)["profile"] == "tiny"
    without = _usage(invoke("complete", "-p", tiny, "--json", "--max-tokens", "3", "hi"))
    assert usage["prompt_tokens"] > without["prompt_tokens"]  # the system prompt went too


class _NoImages(BaseHTTPRequestHandler):
    """A server that does not say whether it sees (no /props) and refuses image parts as
    llama-server without --mmproj does."""

    def do_GET(self) -> None:
        self._answer(404, {"error": {"message": "File Not Found", "type": "not_found_error"}})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        message = "image input is not supported - hint: you may need to provide the mmproj"
        self._answer(500, {"error": {"code": 500, "message": message, "type": "server_error"}})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_a_server_that_does_not_say_gets_the_image_and_its_error_is_one_line(
    workdir: Path, write_profiles: WriteProfiles
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoImages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        write_profiles(f'[profiles.box]\nbase_url = "{url}"\ndialect = "openai"\n')
        result = invoke("complete", "-p", "box", "-a", "shot.png", "what is it?")
    finally:
        server.shutdown()
    assert result.exit_code == 3 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmcli: error: HTTP 500: image input is not")
