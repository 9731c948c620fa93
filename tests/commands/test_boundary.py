"""The command boundary: one neutralised line per error, details under it, notices too."""

from __future__ import annotations

import logging

import pytest
import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.errors import BackendError


def test_report_neutralises_escapes_and_folds_lines(capsys: pytest.CaptureFixture[str]) -> None:
    report("error: server said \x1b]52;c;aGk=\x07 and\nmore\x1b[2J")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "\x1b" not in err and "\x07" not in err
    assert err.startswith("llmcli: error: server said ␛]52;c;aGk=␇ and more␛[2J")


def test_details_come_indented_under_the_error_each_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @command_boundary
    def failing() -> None:
        raise BackendError("llama-server crashed", details=["first\x1b[31m", "x" * 1000, "a\nb"])

    with pytest.raises(typer.Exit) as caught:
        failing()
    assert caught.value.exit_code == 3
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "llmcli: error: llama-server crashed"
    assert lines[1] == "  first␛[31m"
    assert lines[2].startswith("  xxx") and lines[2].endswith("…") and len(lines[2]) == 302
    assert lines[3] == "  a b"
    assert len(lines) == 4


def test_lower_layers_warnings_become_notice_lines(capsys: pytest.CaptureFixture[str]) -> None:
    @command_boundary
    def noisy() -> None:
        logging.getLogger("llmcli.wire.client").warning(
            "HTTP 503: loading; trying again in %.1f s", 1
        )
        logging.getLogger("llmcli.wire.client").info("not shown")

    noisy()
    assert capsys.readouterr().err == "llmcli: HTTP 503: loading; trying again in 1.0 s\n"
