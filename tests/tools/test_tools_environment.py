"""What a user's tool may see and leave behind: no keys, no orphans, no noise at exit.

The keys are proven absent where it matters, in what the model received: the mock server
records the tool results it was sent. The background-child case runs the whole CLI in a
child process, because the "Exception ignored ... Event loop is closed" noise it used to
print is written while the interpreter shuts down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WriteProfiles
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.errors import ConfigError
from llmcli.mock import MockConfig, MockServerThread, ScriptedCall
from llmcli.tools.environment import is_secret_name, tool_environment
from llmcli.tools.process import run_process
from llmcli.tools.user import load_user_tools

SECRETS = {
    "BACKEND_API_KEY": "sk-backend-0001",
    "ZEN_API_KEY": "sk-zen-0002",
    "OPAQUE_SETTING": "sk-profile-0003",  # secret only because a profile names it
    "GITHUB_TOKEN": "ghp-0004",
    "PGPASSWORD": "pg-0005",
}
PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("BACKEND_API_KEY", True),
        ("ZEN_API_KEY", True),
        ("OPENAI_API_KEY", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_SESSION_TOKEN", True),
        ("GH_TOKEN", True),
        ("PGPASSWORD", True),
        ("MYSQL_PASSWD", True),
        ("ssh_auth_sock", True),
        ("DB_Credentials", True),
        ("APIKEY", True),
        ("OPAQUE_SETTING", False),
        ("PATH", False),
        ("HOME", False),
        ("KEYTIMEOUT", False),
        ("MONKEY", False),
        ("XAUTHORITY", False),
        ("LANG", False),
    ],
)
def test_which_names_are_secrets(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_profile_key_variables_and_passed_names() -> None:
    environ = {"PATH": "/bin", "OPAQUE_SETTING": "k", "WEATHER_KEY": "w", "GH_TOKEN": "t"}
    assert tool_environment(environ) == {"PATH": "/bin", "OPAQUE_SETTING": "k"}
    assert tool_environment(environ, key_variables={"OPAQUE_SETTING"}) == {"PATH": "/bin"}
    # Asked for by name, a variable passes whatever it is called.
    assert tool_environment(
        environ, key_variables={"OPAQUE_SETTING"}, passed=["WEATHER_KEY", "OPAQUE_SETTING"]
    ) == {"PATH": "/bin", "OPAQUE_SETTING": "k", "WEATHER_KEY": "w"}


@pytest.mark.parametrize("value", ['"WEATHER_KEY"', '["1BAD"]', "[1]", '["A B"]'])
def test_env_must_list_variable_names(tmp_path: Path, value: str) -> None:
    path = tmp_path / "tools.toml"
    path.write_text(f'[tools.t]\ncommand = ["true"]\nenv = {value}\n')
    with pytest.raises(ConfigError, match=r"env must be a list of variable names"):
        load_user_tools(path)


def test_the_confirmation_names_the_variables_a_tool_may_read(tmp_path: Path) -> None:
    path = tmp_path / "tools.toml"
    path.write_text(
        '[tools.a]\ncommand = ["true"]\nenv = ["WEATHER_KEY", "CITY_TOKEN"]\n'
        '[tools.b]\ncommand = ["true"]\n'
    )
    asks, plain = load_user_tools(path)
    assert asks.show_call({}).splitlines()[-1] == "env: CITY_TOKEN, WEATHER_KEY"
    assert "env:" not in plain.show_call({})


# --- through the CLI, against the mock server ----------------------------------------------


@pytest.fixture
def mock(write_profiles: WriteProfiles) -> Iterator[MockServerThread]:
    """A zen-dialect mock that calls ``env_dump`` once, then answers with the result."""
    script = ((ScriptedCall("env_dump", "{}"),),)
    server = MockServerThread(MockConfig(tool_script=script, answer_tool_results=True))
    server.start()
    write_profiles(
        f'[profiles.mock]\nbase_url = "{server.base_url}"\n'
        'dialect = "zen"\nmodel = "big-pickle"\napi_key = "public"\n'
        # Another profile's key variable is a key too, though its name says nothing.
        '[profiles.other]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "OPAQUE_SETTING"\n'
    )
    yield server
    assert server.server.errors == []
    server.stop()


def tool_results(server: MockServerThread) -> list[str]:
    return [
        message["content"]
        for request in server.server.requests
        for message in request.body["messages"]
        if message["role"] == "tool"
    ]


def test_a_tool_that_prints_its_environment_sends_no_key(
    mock: MockServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WEATHER_KEY", "weather-0006")
    monkeypatch.setenv("HARMLESS_SETTING", "plain-0007")
    tools = tmp_path / "tools.toml"
    tools.write_text(
        "[tools.env_dump]\n"
        f"command = [{json.dumps(sys.executable)}, '-c', {json.dumps(PRINT_ENV)}]\n"
        'safe = true\nenv = ["WEATHER_KEY"]\n'
    )
    result = CliRunner().invoke(
        app, ["tools-demo", "-p", "mock", "--tools", str(tools), "--json", "show your env"]
    )
    assert result.exit_code == 0, result.stderr
    [sent] = tool_results(mock)
    seen = json.loads(sent)
    assert seen["WEATHER_KEY"] == "weather-0006"
    assert seen["HARMLESS_SETTING"] == "plain-0007"
    assert not set(SECRETS) & set(seen)
    for value in SECRETS.values():
        assert value not in sent and value not in result.stdout and value not in result.stderr


# --- a tool that leaves a background child -------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # killed but not reaped (a container's init may never reap it): a zombie is dead
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state not in ("Z", "X")


def _gone(pid: int) -> bool:
    for _ in range(100):
        if not _alive(pid):
            return True
        time.sleep(0.05)  # SIGKILL is delivered asynchronously
    return False


def test_a_background_child_neither_holds_the_call_nor_survives(tmp_path: Path) -> None:
    # The child holds stdout open for 10 minutes; the limit is 60 s. Waiting for the pipe
    # to close would end in "timed out"; reading until the tool itself exits does not.
    script = "sleep 600 & echo $! > child.pid; echo hi"
    result = asyncio.run(run_process(["sh", "-c", script], timeout=60, cwd=tmp_path))
    assert (result.returncode, result.stdout, result.truncated) == (0, "hi\n", False)
    assert _gone(int((tmp_path / "child.pid").read_text()))


def test_tools_demo_with_a_background_child_ends_cleanly(
    mock: MockServerThread, tmp_path: Path
) -> None:
    # A 60 s limit is far beyond what a clean run takes; the child would hold stdout for 600.
    tools = tmp_path / "tools.toml"
    tools.write_text(
        "[tools.env_dump]\n"
        "command = ['sh', '-c', 'sleep 600 & echo $! > child.pid; echo started']\n"
        "safe = true\ntimeout = 60\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "llmcli", "tools-demo", "-p", "mock", "--tools", str(tools), "go"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "env_dump: started\n"
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
    assert "timed out" not in done.stderr
    assert _gone(int((tmp_path / "child.pid").read_text()))


def test_sigterm_while_a_tool_runs_stops_it_and_ends_in_one_line(
    mock: MockServerThread, tmp_path: Path
) -> None:
    tools = tmp_path / "tools.toml"
    tools.write_text(
        "[tools.env_dump]\n"
        "command = ['sh', '-c', 'echo $$ > tool.pid; exec sleep 600']\n"
        "safe = true\ntimeout = 300\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "llmcli", "tools-demo", "-p", "mock", "--tools", str(tools), "go"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "tool.pid"
    try:
        for _ in range(1200):  # a bound on a hang, not a time being measured
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the tool never started")
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "llmcli: error: terminated (SIGTERM)"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert _gone(int(pid_file.read_text()))
