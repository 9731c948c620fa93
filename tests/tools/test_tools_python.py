"""The python tool and the subprocess runner under it: confirmation, limits, environment."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path

import pytest

from llmcli.tools.builtin import builtin_tools, python_tool
from llmcli.tools.confirm import DECLINED, NO_TERMINAL, TerminalConfirmer
from llmcli.tools.files import Root
from llmcli.tools.process import run_process
from llmcli.tools.tool import ConfirmRequest, ToolError, ToolRun
from llmcli.tools.toolbox import Toolbox
from llmcli.wire.events import ToolCall


def python_call(code: str) -> ToolCall:
    return ToolCall(index=0, id="call_0", name="python", arguments=json.dumps({"code": code}))


def confirmer(
    answer: str = "", *, interactive: bool = True, yes: bool = False
) -> tuple[TerminalConfirmer, io.StringIO]:
    stderr = io.StringIO()
    return (
        TerminalConfirmer(
            stdin=io.StringIO(answer), stderr=stderr, interactive=interactive, assume_yes=yes
        ),
        stderr,
    )


def run_python(tmp_path: Path, code: str, confirm: TerminalConfirmer, **options: float) -> ToolRun:
    toolbox = Toolbox([python_tool(Root(tmp_path), **options)], confirm=confirm)  # type: ignore[arg-type]
    return asyncio.run(toolbox.run_call(python_call(code)))


MARK = "open('ran', 'w').write('yes'); print('hello from python')"


def test_python_is_not_offered_without_allow_python(tmp_path: Path) -> None:
    assert "python" not in [tool.name for tool in builtin_tools(Root(tmp_path))]
    allowed = builtin_tools(Root(tmp_path), allow_python=True)
    assert [tool.name for tool in allowed if tool.confirm] == ["python"]


def test_refused_without_a_terminal(tmp_path: Path) -> None:
    confirm, stderr = confirmer(interactive=False)
    result = run_python(tmp_path, MARK, confirm)
    assert result.error == NO_TERMINAL
    assert not (tmp_path / "ran").exists()
    assert "python: refused: no terminal to ask on" in stderr.getvalue()
    assert "  │ open('ran', 'w')" in stderr.getvalue()  # the user still sees what was refused


@pytest.mark.parametrize("answer", ["n\n", "\n", "", "nope\n", "yes please\n"])
def test_declined_at_the_prompt(tmp_path: Path, answer: str) -> None:
    confirm, stderr = confirmer(answer)
    result = run_python(tmp_path, MARK, confirm)
    assert result.error == DECLINED
    assert not (tmp_path / "ran").exists()
    assert stderr.getvalue().endswith("Run python? [y/N] ")


@pytest.mark.parametrize("answer", ["y\n", "YES\n", " y \n"])
def test_approved_at_the_prompt(tmp_path: Path, answer: str) -> None:
    confirm, stderr = confirmer(answer)
    result = run_python(tmp_path, MARK, confirm)
    assert result.ok and result.content == "hello from python\n"
    assert (tmp_path / "ran").read_text() == "yes"  # it ran in the root
    shown = stderr.getvalue()
    assert shown.startswith("⚠ python: needs your approval\n  │ open('ran', 'w').write('yes')")


def test_yes_approves_and_still_shows(tmp_path: Path) -> None:
    confirm, stderr = confirmer(interactive=False, yes=True)
    assert run_python(tmp_path, "print(6 * 7)", confirm).content == "42\n"
    assert "python: approved by --yes\n  │ print(6 * 7)" in stderr.getvalue()


def test_the_prompt_shows_control_characters(tmp_path: Path) -> None:
    # Code that would clear the screen or hide a line behind a CR is shown with both visible.
    confirm, stderr = confirmer("n\n")
    run_python(tmp_path, "print(1)\r# harmless\x1b[2J", confirm)
    assert "print(1)␍# harmless␛[2J" in stderr.getvalue()


def test_prompts_come_one_at_a_time() -> None:
    confirm, stderr = confirmer("y\nn\n")

    async def go() -> list[bool]:
        decisions = await asyncio.gather(
            confirm(ConfirmRequest("a", "first")), confirm(ConfirmRequest("b", "second"))
        )
        return [d.approved for d in decisions]

    assert asyncio.run(go()) == [True, False]
    text = stderr.getvalue()
    assert text.index("Run a?") < text.index("⚠ b") < text.index("Run b?")


def test_errors_time_limit_and_output_cap(tmp_path: Path) -> None:
    yes, _ = confirmer(interactive=False, yes=True)
    failed = run_python(tmp_path, "1/0", yes)
    assert failed.error is not None and failed.error.startswith("exit status 1: Traceback")
    assert failed.error.endswith("ZeroDivisionError: division by zero")
    slow = run_python(tmp_path, "while True: pass", yes, timeout=0.5)
    assert slow.error == "timed out after 0.5 s (the program was stopped)"
    loud = run_python(tmp_path, "while True: print('x' * 1000)", yes, cap=5000)
    assert loud.ok and loud.content.startswith("x" * 1000)
    assert loud.content.endswith("[truncated: output over 5000 bytes; the program was stopped]")
    noisy = run_python(tmp_path, "import sys; print('out'); print('warn', file=sys.stderr)", yes)
    assert noisy.content == "out\n\n[stderr]\nwarn\n"


def test_code_sees_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEN_API_KEY", "sk-very-secret")
    monkeypatch.setenv("PYTHONSTARTUP", "/nonexistent")
    yes, _ = confirmer(interactive=False, yes=True)
    code = "import os, sys; print(sorted(os.environ)); print(sys.flags.isolated)"
    result = run_python(tmp_path, code, yes)
    assert "ZEN_API_KEY" not in result.content and "PYTHONSTARTUP" not in result.content
    assert result.content.splitlines()[1] == "1"


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    # The program starts a grandchild and both sleep; the time limit must end the grandchild too.
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "open('pid', 'w').write(str(p.pid)); time.sleep(60)"
    )
    with pytest.raises(ToolError, match="timed out"):
        asyncio.run(run_process([sys.executable, "-c", code], timeout=1.0, cwd=tmp_path))
    pid = int((tmp_path / "pid").read_text())
    for _ in range(50):
        if not _alive(pid):
            break
        time.sleep(0.05)  # the kill is delivered asynchronously
    else:
        pytest.fail("the grandchild survived the time limit")


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


def test_run_process_basics(tmp_path: Path) -> None:
    echo = "import sys; data = sys.stdin.read(); print(data.upper()); sys.exit(3)"
    result = asyncio.run(run_process([sys.executable, "-c", echo], stdin=b"abc", timeout=10))
    assert (result.returncode, result.stdout, result.truncated) == (3, "ABC\n", False)
    with pytest.raises(ToolError, match="cannot run '/no/such/program'"):
        asyncio.run(run_process(["/no/such/program"], timeout=1))
    # a program that ignores its stdin does not block the writer
    big = asyncio.run(
        run_process([sys.executable, "-c", "print('ok')"], stdin=b"x" * 1_000_000, timeout=10)
    )
    assert big.stdout == "ok\n"
