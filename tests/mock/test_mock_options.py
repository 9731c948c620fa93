"""llmcli.mock.options: ``llmcli mock-server``'s option text, read in one place."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from llmcli.commands import mock_server
from llmcli.mock import Distribution, Faults, MockConfig, ScriptedCall
from llmcli.mock.options import config_from_options, parse_fault_rates


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("", {}),
        ("status_429=0.05,reset=0.01", {"status_429": 0.05, "reset": 0.01}),
        (" stall , no_done=0.5 ,", {"stall": 1.0, "no_done": 0.5}),  # a bare name is certain
        ("malformed=0", {"malformed": 0.0}),
    ],
)
def test_fault_rates(text: str, rates: dict[str, float]) -> None:
    assert parse_fault_rates(text) == rates


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gremlins=0.5", "unknown fault 'gremlins': use one of status_429, status_500"),
        ("reset=often", "fault reset: 'often' is not a rate between 0 and 1"),
    ],
)
def test_bad_fault_rates_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault_rates(text)


def test_the_defaults_are_mock_configs_own() -> None:
    assert config_from_options() == MockConfig()


def test_every_option_reaches_the_config() -> None:
    config = config_from_options(
        dialect="llamacpp",
        ttft="uniform:0.1,0.2",
        itl="0.02",
        tokens_per_chunk="3",
        max_tokens=7,
        reasoning_tokens=2,
        empty_chunks=1,
        faults="status_503=0.25",
        stall_seconds=4.0,
        seed=9,
        record_frames=False,
        models=["m1", "m2"],
        api_keys=["k"],
        tool_script='[[{"name": "now", "arguments": {"tz": "UTC"}}], []]',
        answer_tool_results=True,
    )
    assert config == MockConfig(
        dialect="llamacpp",
        ttft=Distribution("uniform", (0.1, 0.2)),
        itl=0.02,
        tokens_per_chunk=3,
        default_max_tokens=7,
        reasoning_tokens=2,
        empty_chunks=1,
        faults=Faults(status_503=0.25, stall_seconds=4.0),
        seed=9,
        record_frames=False,
        models=("m1", "m2"),
        api_keys=frozenset({"k"}),
        tool_script=((ScriptedCall("now", '{"tz": "UTC"}'),), ()),
        answer_tool_results=True,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dialect": "openai"}, "dialect must be 'zen' or 'llamacpp'"),
        ({"faults": "reset=0.7,stall=0.7"}, "fault rates add up to 1.4"),
        ({"stall_seconds": -1.0}, "stall_seconds must be 0 or more"),
        ({"tool_script": "[[1]]"}, "each call is"),
        ({"itl": "fast"}, "neither a number nor KIND:PARAMS"),
    ],
)
def test_bad_options_are_one_value_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_options(**options)  # type: ignore[arg-type]


def test_the_command_refuses_a_bad_tool_script_in_one_line() -> None:
    app = typer.Typer()
    app.command("mock-server")(mock_server.mock_server)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["mock-server", "--tool-script", "{not json"])
    assert result.exit_code == 2
    assert "--tool-script is not JSON" in result.stderr and result.stderr.count("\n") == 1
