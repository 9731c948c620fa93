"""Tests for ``llmcli history``: list, show, export and rm through typer's CliRunner.

The app is mounted the way the main CLI mounts it (``add_typer(..., name="history")``).
The store lives in ``LLMCLI_DATA_DIR`` under ``tmp_path``, filled with a fixed clock and
read in UTC, so every line printed can be asserted exactly; stdout and stderr separately.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from llmcli.commands import history as history_command
from llmcli.storage.store import Store, StoredMessage
from llmcli.ui.terminal import Terminal

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "data"
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(directory))
    return directory


@pytest.fixture
def ids(data_dir: Path) -> dict[str, str]:
    """Two conversations: "chat" (older, rich) and "quick" (newer, one exchange)."""
    clock = Clock()
    with Store.open(data_dir / "history.db", clock=clock) as store:
        chat = store.new_conversation(profile="local", model=None, system="Be brief.")
        clock.now += 60
        store.append(chat, StoredMessage("user", "Weather in \x1b[31mParis\x1b[0m?"))
        store.append(
            chat,
            StoredMessage(
                "assistant",
                "",
                reasoning="Need a tool.\nCall it.",
                tool_calls=(CALL,),
                model="tiny",
                usage={"prompt_tokens": 7},
                timings={"predicted_ms": 1.5},
            ),
        )
        store.append(chat, StoredMessage("tool", "sunny", tool_call_id="call_1"))
        store.append(
            chat,
            StoredMessage("assistant", "It is sun", interrupted=True, error="interrupted"),
        )
        clock.now += 3600
        quick = store.new_conversation(profile="zen", model="big-pickle")
        store.append(quick, StoredMessage("user", "hi"))
        store.append(quick, StoredMessage("assistant", "", error="server said 500"))
    return {"chat": chat, "quick": quick}


def run(*args: str, input: str | None = None, **env: str) -> Result:
    main = typer.Typer()
    main.add_typer(history_command.app, name="history")
    return CliRunner().invoke(main, ["history", *args], input=input, env=env or None)


def terminal(monkeypatch: pytest.MonkeyPatch, **facts: bool) -> None:
    """The commands see terminals where CliRunner has none: stdout, or the ``facts`` given."""
    detect = Terminal.detect
    changes: dict[str, Any] = facts or {"stdout_isatty": True}

    def detect_terminals(**streams: Any) -> Terminal:
        return dataclasses.replace(detect(**streams), **changes)

    monkeypatch.setattr(Terminal, "detect", staticmethod(detect_terminals))


# --- list ----------------------------------------------------------------------------------


def test_list_piped_is_tab_separated_newest_first(ids: dict[str, str]) -> None:
    result = run("list")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{ids['quick']}\t2023-11-14 23:14\tzen\tbig-pickle\t2\thi",
        f"{ids['chat']}\t2023-11-14 22:14\tlocal\ttiny\t4\tWeather in ␛[31mParis␛[0m?",
    ]
    assert result.stderr == ""
    assert run("list", "--limit", "1").stdout.splitlines()[0].startswith(ids["quick"])


def test_list_json(ids: dict[str, str]) -> None:
    result = run("list", "--json", "-n", "5")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "id": ids["quick"],
            "title": "hi",
            "profile": "zen",
            "model": "big-pickle",
            "created_at": T0 + 3660,
            "updated_at": T0 + 3660,
            "message_count": 2,
        },
        {
            "id": ids["chat"],
            "title": "Weather in \x1b[31mParis\x1b[0m?",
            "profile": "local",
            "model": "tiny",
            "created_at": T0,
            "updated_at": T0 + 60,
            "message_count": 4,
        },
    ]
    assert "\x1b" not in result.stdout  # escaped as \u001b
    assert result.stderr == ""


def test_list_in_a_terminal_is_a_table_with_short_ids(
    ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal(monkeypatch)

    result = run("list", NO_COLOR="1", COLUMNS="120")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "PROFILE", "MODEL", "MSGS", "TITLE"]
    assert lines[1].split()[:6] == [
        ids["quick"][:8],
        "2023-11-14",
        "23:14",
        "zen",
        "big-pickle",
        "2",
    ]
    assert lines[2].startswith(ids["chat"][:8] + " ")
    assert ids["chat"] not in result.stdout
    assert "\x1b" not in result.stdout
    assert "␛[31mParis" in result.stdout
    assert result.stderr == ""


def test_list_with_no_conversations(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    piped = run("list")
    assert (piped.exit_code, piped.stdout, piped.stderr) == (0, "", "")

    terminal(monkeypatch)
    shown = run("list")
    assert (shown.exit_code, shown.stdout) == (0, "")
    assert shown.stderr.startswith("llmcli: no conversations yet")


def test_list_rejects_a_limit_below_one(data_dir: Path) -> None:
    result = run("list", "--limit", "0")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--limit" in result.stderr


# --- show ----------------------------------------------------------------------------------


def test_show_piped_is_plain_text(ids: dict[str, str]) -> None:
    result = run("show", ids["chat"][:9])

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"conversation {ids['chat']}  profile local  model tiny  created 2023-11-14 22:13\n"
        "\n"
        "system:\n"
        "Be brief.\n"
        "\n"
        "user:\n"
        "Weather in ␛[31mParis␛[0m?\n"
        "\n"
        "assistant:\n"
        "reasoning:\n"
        "  Need a tool.\n"
        "  Call it.\n"
        "→ weather({})\n"
        "\n"
        "tool (call_1):\n"
        "sunny\n"
        "\n"
        "assistant:\n"
        "It is sun\n"
        "[interrupted]\n"
    )
    assert result.stderr == ""


def test_show_marks_errors(ids: dict[str, str]) -> None:
    result = run("show", ids["quick"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("assistant:\n[error: server said 500]\n")


def test_show_in_a_terminal_labels_reasoning(
    ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal(monkeypatch)

    plain = run("show", ids["chat"], COLUMNS="200", NO_COLOR="1")
    coloured = run("show", ids["chat"], COLUMNS="200", FORCE_COLOR="1")

    assert plain.exit_code == coloured.exit_code == 0, plain.stderr + coloured.stderr
    lines = plain.stdout.splitlines()
    assert lines[lines.index("assistant:") + 1 : lines.index("assistant:") + 4] == [
        "reasoning:",
        "  Need a tool.",
        "  Call it.",
    ]
    assert "\x1b" not in plain.stdout
    dim = "\x1b[2m"
    assert f"{dim}reasoning:" in coloured.stdout
    assert f"{dim}  Need a tool." in coloured.stdout
    # The model's own escape sequence stays inert among the styles.
    assert "Weather in ␛[31mParis␛[0m?" in coloured.stdout
    assert "\x1b[31m" not in coloured.stdout
    assert plain.stderr == coloured.stderr == ""


MARKDOWN_ANSWER = (
    "**Paris** is the capital.\n\n- one\n- two\n\n"
    "See [the guide](https://example.com/guide).\n\n```\nprint(1)\n```\n"
    "Bye \x1b]0;pwned\x07 \u202eevil"
)


def test_show_renders_markdown_in_a_terminal_and_plain_when_piped(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(data_dir / "history.db", clock=Clock()) as store:
        conversation = store.new_conversation(profile="local", model="tiny")
        store.append(conversation, StoredMessage("user", "*where*?"))
        store.append(conversation, StoredMessage("assistant", MARKDOWN_ANSWER))

    piped = run("show", conversation)
    terminal(monkeypatch)
    shown = run("show", conversation, COLUMNS="80", NO_COLOR="1")
    coloured = run("show", conversation, COLUMNS="80", FORCE_COLOR="1")

    assert piped.exit_code == shown.exit_code == coloured.exit_code == 0, shown.stderr
    assert "**Paris** is the capital." in piped.stdout and "- one" in piped.stdout
    lines = [line.rstrip() for line in shown.stdout.splitlines()]
    answer = lines[lines.index("assistant:") + 1 :]
    assert answer[:4] == ["Paris is the capital.", "", " • one", " • two"]
    assert "See the guide (https://example.com/guide)." in answer  # where a link goes, shown
    assert "print(1)" in shown.stdout and "```" not in shown.stdout
    assert "where?" in lines[lines.index("user:") + 1]
    for output in (shown.stdout, coloured.stdout):
        # The answer's own controls stay inert in the rendered markdown.
        assert "Bye ␛]0;pwned␇ <U+202E>evil" in output
        assert "\x1b]" not in output and "\u202e" not in output and "\x07" not in output
    assert "\x1b]8;" not in coloured.stdout  # no hyperlink escapes
    assert "\x1b[1m" in coloured.stdout  # bold Paris, the role labels


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("zzzz", "llmcli: error: no conversation 'zzzz': 'llmcli history list' shows the ids\n"),
        ("0", "is ambiguous"),
        ("what?", "is not a conversation id"),
    ],
)
def test_show_a_bad_id_is_one_line_and_exit_2(
    ids: dict[str, str], prefix: str, message: str
) -> None:
    result = run("show", prefix)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_corrupt_database_is_one_line_saying_what_to_do(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "history.db").write_bytes(b"garbage, not SQLite\n" * 100)

    result = run("list")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"llmcli: error: history database {data_dir / 'history.db'}")
    assert "move it aside" in result.stderr
    assert result.stderr.count("\n") == 1


# --- export --------------------------------------------------------------------------------


def test_export_markdown(ids: dict[str, str]) -> None:
    result = run("export", ids["chat"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "# Weather in ␛[31mParis␛[0m?\n\n"
        f"- id: `{ids['chat']}`\n"
        "- profile: local\n"
        "- model: tiny\n"
        "- created: 2023-11-14 22:13\n\n"
        "## system\n\nBe brief.\n\n"
        "## user\n\nWeather in ␛[31mParis␛[0m?\n\n"
        "## assistant\n\n"
        "<details>\n<summary>reasoning</summary>\n\nNeed a tool.\nCall it.\n\n</details>\n\n"
        "→ `weather({})`\n\n"
        "## tool (call_1)\n\nsunny\n\n"
        "## assistant\n\nIt is sun\n\n*[interrupted]*\n"
    )
    assert result.stderr == ""


def test_export_json_is_the_full_record(ids: dict[str, str]) -> None:
    result = run("export", ids["chat"], "--json")

    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["id"], record["system"], record["message_count"]) == (
        ids["chat"],
        "Be brief.",
        4,
    )
    tool_step = record["messages"][1]
    assert tool_step["reasoning"] == "Need a tool.\nCall it."
    assert tool_step["tool_calls"] == [CALL]
    assert tool_step["usage"] == {"prompt_tokens": 7}
    assert tool_step["timings"] == {"predicted_ms": 1.5}
    assert (tool_step["seq"], tool_step["created_at"]) == (2, T0 + 60)
    assert record["messages"][0]["content"] == "Weather in \x1b[31mParis\x1b[0m?"
    assert "\x1b" not in result.stdout
    assert result.stderr == ""


def test_export_to_a_file(ids: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "chat.json"

    result = run("export", ids["quick"], "--json", "--output", str(target))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"llmcli: wrote conversation {ids['quick']} to {target}\n"
    assert json.loads(target.read_text())["messages"][1]["error"] == "server said 500"


def test_export_to_an_unwritable_place(ids: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "missing" / "chat.md"

    result = run("export", ids["quick"], "-o", str(target))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"llmcli: error: {target}: cannot write: No such file or directory\n"


# --- rm ------------------------------------------------------------------------------------


def remaining(data_dir: Path) -> list[str]:
    with Store.open(data_dir / "history.db") as store:
        return [summary.id for summary in store.list()]


def test_rm_from_a_script_needs_yes(ids: dict[str, str], data_dir: Path) -> None:
    refused = run("rm", ids["quick"])

    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert "pass --yes" in refused.stderr
    assert ids["quick"] in remaining(data_dir)

    done = run("rm", ids["quick"][:11], "--yes")

    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == f"llmcli: deleted conversation {ids['quick']}\n"
    assert remaining(data_dir) == [ids["chat"]]


def test_rm_in_a_terminal_asks(
    ids: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal(monkeypatch, stdin_isatty=True)

    kept = run("rm", ids["chat"], input="n\n")

    assert kept.exit_code == 0, kept.stderr
    assert f"delete conversation {ids['chat']} ('Weather in ␛[31mParis␛[0m?', 4 messages)?" in (
        kept.stderr
    )
    assert kept.stderr.endswith("llmcli: nothing deleted\n")
    assert "\x1b" not in kept.stderr
    assert ids["chat"] in remaining(data_dir)

    deleted = run("rm", ids["chat"], input="y\n")

    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.stderr.endswith(f"llmcli: deleted conversation {ids['chat']}\n")
    assert remaining(data_dir) == [ids["quick"]]


def test_rm_unknown(ids: dict[str, str]) -> None:
    result = run("rm", "zzzzzzzz", "--yes")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no conversation 'zzzzzzzz'" in result.stderr


# --- import cost ---------------------------------------------------------------------------


def test_the_module_imports_only_typer_and_the_standard_library() -> None:
    code = (
        "import sys, llmcli.commands.history; "
        "print(sorted(m for m in ('rich', 'sqlite3', 'llmcli.storage.store', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


# --- search --------------------------------------------------------------------------------


def test_search_piped_is_tab_separated_and_neutralised(ids: dict[str, str]) -> None:
    result = run("search", "weather")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{ids['chat']}\t1\t2023-11-14 22:14\tlocal\ttiny\tuser\t[Weather] in ␛[31mParis␛[0m?",
    ]
    assert result.stderr == ""


def test_search_filters_by_profile_model_and_day(ids: dict[str, str]) -> None:
    assert run("search", "sun OR hi", "-p", "zen").stdout.split("\t")[0] == ids["quick"]
    assert run("search", "sun", "-m", "big-pickle").stdout == ""
    assert run("search", "sun", "-m", "tiny").stdout.split("\t")[0] == ids["chat"]
    assert run("search", "sunny", "--since", "2023-11-14", "--until", "2023-11-14").stdout
    assert run("search", "sunny", "--since", "2023-11-15").stdout == ""
    assert run("search", "sunny", "--until", "2023-11-13").stdout == ""


def test_search_json(ids: dict[str, str]) -> None:
    result = run("search", "sunny", "--json")

    assert result.exit_code == 0, result.stderr
    [hit] = json.loads(result.stdout)
    assert hit["conversation_id"] == ids["chat"]
    assert hit["seq"] == 3
    assert hit["snippet"] == "[sunny]"


def test_search_with_no_match_says_so(ids: dict[str, str]) -> None:
    result = run("search", "nowhere")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "llmcli: no messages match\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", '"unclosed'), "cannot search for '\"unclosed'"),
        (("search", "x", "--since", "2023-13-01"), "--since '2023-13-01' is not a date"),
        (("search", "x", "--until", "yesterday"), "--until 'yesterday' is not a date"),
        (("search", "x", "--since", "2023-11-15", "--until", "2023-11-14"), "is before"),
    ],
)
def test_search_bad_input_is_one_line(
    ids: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run(*args)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


# --- usage ---------------------------------------------------------------------------------


@pytest.fixture
def spent(data_dir: Path) -> None:
    """Three answers on two days: two from zen's big-pickle (with cost), one local."""
    clock = Clock()
    with Store.open(data_dir / "history.db", clock=clock) as store:
        zen = store.new_conversation(profile="zen", model="big-pickle")
        for cost, usage in (
            ("0.0010", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
            ("0.0002", {"prompt_tokens": 3, "completion_tokens": 4}),
        ):
            store.append(zen, StoredMessage("user", "q"))
            store.append(zen, StoredMessage("assistant", "a", usage=usage, cost=cost))
        clock.now += 86_400  # the next day
        local = store.new_conversation(profile="local", model="tiny")
        store.append(local, StoredMessage("user", "q"))
        store.append(local, StoredMessage("assistant", "\x1b]0;x\x07a"))


def test_usage_totals_per_profile_and_model(spent: None) -> None:
    result = run("usage")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "local\ttiny\t1\t0\t0\t0\t-",
        "zen\tbig-pickle\t2\t13\t9\t22\t$0.0012",
    ]


def test_usage_over_a_period_as_json(spent: None) -> None:
    result = run("usage", "--since", "2023-11-15", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "profile": "local",
            "model": "tiny",
            "answers": 1,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost": None,
        }
    ]
    assert run("usage", "--until", "2023-11-14", "--json").stdout.count('"profile"') == 1


def test_usage_with_nothing_in_the_period(spent: None) -> None:
    result = run("usage", "--since", "2030-01-01")

    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "llmcli: no answers in that period\n"


def test_usage_bad_date_is_one_line(spent: None) -> None:
    result = run("usage", "--until", "2023-02-30")

    assert result.exit_code == 2
    assert "--until '2023-02-30' is not a date" in result.stderr
    assert result.stderr.count("\n") == 1
