"""Spawned servers on CPUs that advertise what they cannot run, and on quantized models.

Issue 11: on an Intel Xeon VM that reports AMX but faults on it, llama-server dies with
SIGSEGV on its first matrix product over repacked Q4 weights. llmcli starts it once more
with ``--no-repack``, remembers that for the binary on this CPU, and says a crash as a
crash. The quantized model runs through the real server (repacked for this CPU's
kernels); the fault itself is made by a wrapper around the real binary (crash while
starting) or by tests/rig/crashing_server.py (crash on the probe or mid-answer).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import RIG, WriteProfiles
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.config.profiles import load_profiles, select_profile
from llmcli.local import spawn

CRASHING_SERVER = RIG / "crashing_server.py"
NOTICE = "starting it again with --no-repack"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def error_and_details(stderr: str) -> tuple[str, list[str]]:
    lines = stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("llmcli: error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    details = []
    for line in lines[errors[0] + 1 :]:
        if not line.startswith("  "):
            break
        details.append(line.strip())
    return lines[errors[0]], details


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def segfaults_unless_no_repack(tmp_path: Path, real: Path) -> Path:
    """The real llama-server, behind a wrapper that dies as the AMX fault does until the
    command line has --no-repack."""
    return executable(
        tmp_path / "llama-server-amx",
        "#!/bin/sh\n"
        f'case " $* " in *" --no-repack "*) exec "{real}" "$@";; esac\n'
        'echo "ggml_backend_amx_mul_mat: simulated ldtilecfg fault"\n'
        "kill -SEGV $$\n",
    )


def fake_server_bin(tmp_path: Path) -> Path:
    return executable(
        tmp_path / "fake-llama-server",
        f'#!/bin/sh\nexec "{sys.executable}" "{CRASHING_SERVER}" "$@"\n',
    )


def server_log(tmp_path: Path, profile: str) -> str:
    return (tmp_path / "data-home" / "llmcli" / "logs" / f"{profile}.log").read_text()


def quirks(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (tmp_path / "data-home" / "llmcli" / "cpu-quirks.json").read_text()
    )
    return data


def test_a_quantized_model_answers_through_a_spawned_server(
    write_profiles: WriteProfiles, tiny_model_q4: Path
) -> None:
    """Q4_0 weights are repacked for this CPU's kernels at load; the answer must come."""
    write_profiles(
        f'[profiles.q4]\nspawn = true\nmodel_path = "{tiny_model_q4}"\nctx = 512\nthreads = 2\n'
    )
    result = invoke(
        "complete", "-p", "q4", "hello there, how are you?", "--max-tokens", "8", "--json"
    )
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    # Random weights may sample the end token early: an answer of 1 to 8 tokens came.
    assert 1 <= answer["usage"]["completion_tokens"] <= 8
    assert answer["finish_reason"] in ("length", "stop")
    assert NOTICE not in result.stderr


def test_a_crash_while_starting_is_retried_without_repacking_and_remembered(
    write_profiles: WriteProfiles, tiny_model_q4: Path, llama_binary: Path, tmp_path: Path
) -> None:
    wrapper = segfaults_unless_no_repack(tmp_path, llama_binary)
    write_profiles(
        f'[profiles.amx]\nspawn = true\nmodel_path = "{tiny_model_q4}"\nctx = 512\n'
        f'server_bin = "{wrapper}"\n'
    )
    first = invoke("complete", "-p", "amx", "hi", "--max-tokens", "4", "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["usage"]["completion_tokens"] == 4
    notices = [line for line in first.stderr.splitlines() if NOTICE in line]
    assert len(notices) == 1, first.stderr
    assert "killed by SIGSEGV while starting" in notices[0]
    [entry] = quirks(tmp_path).values()
    assert entry["no_repack"] is True and entry["binary"] == str(wrapper)

    second = invoke("complete", "-p", "amx", "hi", "--max-tokens", "4")
    assert second.exit_code == 0, second.stderr
    assert NOTICE not in second.stderr
    starts = re.findall(r"^=== .* llmcli pid \d+: (.*)$", server_log(tmp_path, "amx"), re.M)
    # crashed, retried, then straight to --no-repack
    assert ["--no-repack" in argv for argv in starts] == [False, True, True]


def test_a_crash_with_no_repack_already_is_one_error_with_the_log(
    write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    always = executable(
        tmp_path / "always-crashes", "#!/bin/sh\necho 'bad instruction'\nkill -ILL $$\n"
    )
    write_profiles(
        f'[profiles.bad]\nspawn = true\nmodel_path = "{always}"\nserver_bin = "{always}"\n'
        'extra_args = ["--no-repack"]\n'
    )
    result = invoke("complete", "-p", "bad", "hi")
    assert result.exit_code == 3
    assert result.stdout == ""
    line, details = error_and_details(result.stderr)
    assert "llama-server was killed by SIGILL while starting" in line
    assert "crashed even with --no-repack" in line
    log = tmp_path / "data-home" / "llmcli" / "logs" / "bad.log"
    assert f"(log: {log})" in line
    assert details == ["bad instruction"]
    assert NOTICE not in result.stderr


def test_a_cpu_with_amx_is_probed_once_and_a_fault_there_restarts(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU reporting AMX the first start sends one prompt before calling the server
    ready; a fault there restarts it without repacking, before the user's answer."""
    fake = fake_server_bin(tmp_path)
    write_profiles(f'[profiles.f]\nspawn = true\nmodel_path = "{fake}"\nserver_bin = "{fake}"\n')
    monkeypatch.setenv("CRASH_ON", "probe")
    profile = select_profile(load_profiles(), "f")
    server = spawn.start_server(profile, amx=True)
    try:
        assert spawn.NO_REPACK in server.argv
    finally:
        server.stop()
    assert [entry["no_repack"] for entry in quirks(tmp_path).values()] == [True]
    log = server_log(tmp_path, "f")
    assert "simulated CPU fault on probe" in log and "repack off" in log


def test_a_cpu_with_amx_that_runs_fine_is_remembered_as_fine(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_server_bin(tmp_path)
    write_profiles(f'[profiles.f]\nspawn = true\nmodel_path = "{fake}"\nserver_bin = "{fake}"\n')
    monkeypatch.setenv("CRASH_ON", "")
    profile = select_profile(load_profiles(), "f")
    for _ in range(2):
        server = spawn.start_server(profile, amx=True)
        server.stop()
        assert spawn.NO_REPACK not in server.argv
    assert [entry["no_repack"] for entry in quirks(tmp_path).values()] == [False]
    assert server_log(tmp_path, "f").count('"POST /completion') == 1  # probed once


def test_a_crash_while_answering_names_the_signal_and_fixes_the_next_start(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_server_bin(tmp_path)
    write_profiles(f'[profiles.f]\nspawn = true\nmodel_path = "{fake}"\nserver_bin = "{fake}"\n')
    monkeypatch.setenv("CRASH_ON", "chat")
    monkeypatch.setattr(spawn, "cpu_advertises_amx", lambda flags=None: False)
    first = invoke("complete", "-p", "f", "What is the capital of France?")
    assert first.exit_code == 3
    line, details = error_and_details(first.stderr)
    assert "llama-server was killed by SIGSEGV while answering" in line
    assert "the next start adds --no-repack by itself" in line
    assert "simulated CPU fault on chat" in details
    second = invoke("complete", "-p", "f", "What is the capital of France?")
    assert second.exit_code == 0, second.stderr
    assert second.stdout.strip() == "Paris"
