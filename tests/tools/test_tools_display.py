"""How the tool loop looks: results cut on screen, calls growing live, and a real terminal."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
from conftest import WriteProfiles

from llmcli.mock import MockConfig, MockServerThread, ScriptedCall
from llmcli.tools.display import ToolLoopPrinter, format_duration, preview_result
from llmcli.tools.loop import Step
from llmcli.tools.tool import ToolRun, error_content
from llmcli.ui.render import OutputMode
from llmcli.wire.events import ContentDelta, Event, Finish, Outcome, ToolCall, ToolCallDelta

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("391", ["391"]),
        ("a\nb\nc\nd\n", ["a", "b", "c", "d"]),
        ("a\nb\nc\nd\ne", ["a", "b", "c", "d", "… 1 more line, 9 characters in all"]),
        ("x" * 200, ["x" * 159 + "…"]),
        ("\x1b[2Jboom", ["␛[2Jboom"]),
    ],
)
def test_preview_result(text: str, shown: list[str]) -> None:
    assert preview_result(text) == shown


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.0004, 0.25, 1.0, 12.34)] == [
        "0 ms",
        "250 ms",
        "1.0 s",
        "12.3 s",
    ]


def printer(*, terminal: bool) -> tuple[ToolLoopPrinter, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    mode = OutputMode(markdown=False, color_out=False, color_err=terminal, show_reasoning=True)
    return ToolLoopPrinter(mode, stdout=out, stderr=err), out, err


def one_step(view: ToolLoopPrinter) -> None:
    step = Step(0, Outcome())
    call = ToolCall(0, "c1", "calculator", '{"expression": "17*23"}')
    events: list[Event] = [
        ContentDelta("Let me check."),
        ToolCallDelta(0, "c1", "calculator", ""),
        ToolCallDelta(0, None, None, '{"expression": '),
        ToolCallDelta(0, None, None, '"17*23"}'),
        call,
        Finish("tool_calls"),
    ]
    show = view.begin_step(0)
    for event in events:
        step.outcome.observe(event)
        show(event)
    step.outcome.ended = step.outcome.started + 0.5
    view.end_step(step)
    view.tool_done(ToolRun(call, "391", None, 1.0, 1.002))
    view.tool_done(ToolRun(call, error_content("division by zero"), "division by zero", 1.0, 1.0))


def test_piped_shows_whole_calls_and_results() -> None:
    view, out, err = printer(terminal=False)
    one_step(view)
    assert out.getvalue() == "Let me check.\n"
    assert err.getvalue().splitlines() == [
        '→ tool call calculator({"expression": "17*23"})',
        "step 1 · model ? · TTFT 0.00 s",
        "← calculator (2 ms)",
        "  391",
        "✗ calculator failed (0 ms): division by zero",
    ]


def test_terminal_shows_the_name_as_soon_as_it_arrives() -> None:
    view, out, err = printer(terminal=True)
    one_step(view)
    shown = ANSI.sub("", err.getvalue())
    assert "→ calculator(…" in shown  # drawn live, before the arguments were complete
    assert shown.index("→ calculator(…") < shown.index(
        '→ tool call calculator({"expression": "17*23"})'
    )
    assert out.getvalue() == "Let me check.\n"


# -- a real terminal ----------------------------------------------------------------------


def test_confirm_in_a_real_terminal(write_profiles: WriteProfiles, tmp_path: Path) -> None:
    code = "print(6 * 7)"
    script = ((ScriptedCall("python", json.dumps({"code": code})),),) * 2
    with MockServerThread(
        MockConfig(tool_script=script, answer_tool_results=True, itl=0.01)
    ) as mock:
        profiles = write_profiles(
            f'[profiles.mock]\nbase_url = "{mock.base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
        )
        env = {**os.environ, "TERM": "xterm-256color", "LLMCLI_CONFIG": str(profiles)}
        env.pop("NO_COLOR", None)
        child = pexpect.spawn(
            sys.executable,
            [
                "-m",
                "llmcli",
                "tools-demo",
                "-p",
                "mock",
                "--allow-python",
                "--root",
                str(tmp_path),
                "go",
            ],
            env=env,
            dimensions=(30, 100),
            encoding="utf-8",
            timeout=20,
        )
        child.expect_exact("python: needs your approval")
        child.expect_exact("│ print(6 * 7)")
        child.expect_exact("Run python? [y/N] ")
        child.send("y\r")
        child.expect(r"← python \((\d+ ms|[\d.]+ s)\)")
        # The second step calls again; this time the user says no.
        child.expect_exact("Run python? [y/N] ")
        child.send("n\r")
        child.expect_exact("✗ python failed")
        child.expect_exact("python:")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        transcript = ANSI.sub("", child.before or "")
        assert "the user declined this call" in transcript
