"""KV cache slots: the pure parts, the real llama-server's answers, the CLI and /cache."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import typer
from conftest import StartLlama, WriteProfiles
from rig import LlamaServer
from rig.profiles import make_profile
from typer.testing import CliRunner

from llmcli.chat.repl import cache_command
from llmcli.commands import chat as chat_command
from llmcli.commands import slots as slots_command
from llmcli.config.profiles import Profile, SpawnSpec, load_profiles, select_profile
from llmcli.errors import ConfigError, StreamError, UsageError
from llmcli.local import slots, spawn
from llmcli.local.slots import SlotInfo, SlotResult
from llmcli.wire.client import ChatRequest, Client

T = TypeVar("T")

# The proposed registration (cli.py is edited by whoever commits).
APP = typer.Typer()
APP.add_typer(slots_command.app, name="slots")
APP.command()(chat_command.chat)


def run(profile: Profile, work: Callable[[Client], Awaitable[T]]) -> T:
    async def go() -> T:
        async with Client(profile) as client:
            return await work(client)

    return asyncio.run(go())


def fill_a_slot(profile: Profile) -> None:
    """One short answer, so a slot holds a prompt's KV cache."""

    async def ask(client: Client) -> None:
        request = ChatRequest(messages=[{"role": "user", "content": "remember me"}], max_tokens=2)
        await client.complete_chat(request)

    run(profile, ask)


def slot(id: int, task: int | None = None) -> SlotInfo:
    return SlotInfo(id=id, n_ctx=1024, is_processing=False, id_task=task, n_prompt_tokens=None)


# --- pure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ([slot(0), slot(1)], 0),
        ([slot(0), slot(1, task=0)], 1),
        ([slot(0, task=5), slot(1, task=3)], 0),
        ([slot(2), slot(1)], 1),
    ],
)
def test_latest_slot(found: list[SlotInfo], expected: int) -> None:
    assert slots.latest_slot(found) == expected


def test_latest_slot_of_none_is_an_error() -> None:
    with pytest.raises(StreamError, match="no slots"):
        slots.latest_slot([])


def test_parse_slots_skips_what_is_not_a_slot() -> None:
    payload = [
        {"id": 0, "n_ctx": 1024, "is_processing": False},
        {"id": 1, "n_ctx": 1024, "is_processing": True, "id_task": 7, "n_prompt_tokens": 13},
        {"id": "2"},
        {"id": True},
        "junk",
    ]
    assert slots.parse_slots(payload) == [
        SlotInfo(0, 1024, False, None, None),
        SlotInfo(1, 1024, True, 7, 13),
    ]
    with pytest.raises(StreamError, match="not a list"):
        slots.parse_slots({"error": "x"})


@pytest.mark.parametrize("name", ["chat.bin", "a", "run_1-2.bin"])
def test_good_cache_names(name: str) -> None:
    assert slots.check_filename(name) == name


@pytest.mark.parametrize("name", ["", "../x.bin", "a/b", ".hidden", "a..b", "x y"])
def test_bad_cache_names_are_refused_before_asking(name: str) -> None:
    with pytest.raises(UsageError, match="bad cache name"):
        slots.check_filename(name)


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (SlotResult("save", 1, "c.bin", 13, 6968), "saved slot 1 to c.bin (13 tokens, 6968 bytes)"),
        (SlotResult("restore", 0, "c.bin", 13, 6968), "restored c.bin into slot 0 (13 tokens, 6968 bytes)"),
        (SlotResult("erase", 1, None, 13, None), "erased slot 1 (13 tokens)"),
    ],
)  # fmt: skip
def test_describe(result: SlotResult, line: str) -> None:
    assert result.describe() == line


def test_other_backends_are_told_in_one_line_without_a_request() -> None:
    zen = make_profile("http://127.0.0.1:9/v1", dialect="zen", name="zen")
    with pytest.raises(UsageError, match=r"llama\.cpp feature; profile 'zen' \(zen\)"):
        run(zen, lambda client: slots.save_slot(client, "c.bin"))
    with pytest.raises(UsageError, match=r"llama\.cpp feature"):
        asyncio.run(cache_command(zen, "save c.bin"))


# --- the real server --------------------------------------------------------------------


@pytest.fixture
def saving_server(start_llama: StartLlama, tmp_path: Path) -> tuple[LlamaServer, Path]:
    directory = tmp_path / "kv"
    directory.mkdir()
    server = start_llama(alias="tiny-slots", extra_args=("--slot-save-path", str(directory)))
    return server, directory


def test_save_erase_restore_round_trip(saving_server: tuple[LlamaServer, Path]) -> None:
    server, directory = saving_server
    profile = make_profile(server.base_url)
    fill_a_slot(profile)
    used = slots.latest_slot(run(profile, slots.list_slots))

    saved = run(profile, lambda client: slots.save_slot(client, "conv.bin"))
    assert (saved.action, saved.slot, saved.filename) == ("save", used, "conv.bin")
    assert saved.tokens > 0
    assert saved.nbytes == (directory / "conv.bin").stat().st_size

    erased = run(profile, lambda client: slots.erase_slots(client, used))
    assert [(result.slot, result.tokens) for result in erased] == [(used, saved.tokens)]
    again = run(profile, lambda client: slots.erase_slots(client, used))
    assert [result.tokens for result in again] == [0]  # it really was emptied

    restored = run(profile, lambda client: slots.restore_slot(client, "conv.bin", used))
    assert (restored.slot, restored.tokens, restored.nbytes) == (used, saved.tokens, saved.nbytes)


def test_erase_without_a_slot_empties_every_slot(saving_server: tuple[LlamaServer, Path]) -> None:
    profile = make_profile(saving_server[0].base_url)
    fill_a_slot(profile)
    erased = run(profile, slots.erase_slots)
    assert sorted(result.slot for result in erased) == [0, 1]  # the rig's -np 2
    assert sum(result.tokens for result in erased) > 0


def test_restoring_a_name_never_saved(saving_server: tuple[LlamaServer, Path]) -> None:
    profile = make_profile(saving_server[0].base_url)
    with pytest.raises(UsageError, match=r"cannot restore 'nope\.bin': no such saved cache"):
        run(profile, lambda client: slots.restore_slot(client, "nope.bin", 0))


def test_a_server_without_slot_save_path(llama_think: LlamaServer) -> None:
    # The server's own words: 501 "This server does not support slots action. Start it
    # with `--slot-save-path`" (not_supported_error).
    profile = make_profile(llama_think.base_url)
    with pytest.raises(UsageError) as info:
        run(profile, lambda client: slots.save_slot(client, "c.bin", 0))
    assert str(info.value) == f"cannot save slots: {slots.NO_SAVE_PATH_HINT}"
    with pytest.raises(UsageError, match="cannot erase slots: the server was started without"):
        run(profile, lambda client: slots.erase_slots(client, 0))
    assert [s.id for s in run(profile, slots.list_slots)] == [0, 1]  # listing needs no flag


# --- the CLI and the chat REPL ----------------------------------------------------------


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(APP, list(args), input=input)


@pytest.fixture
def kv_profile(write_profiles: WriteProfiles, saving_server: tuple[LlamaServer, Path]) -> str:
    write_profiles(f'[profiles.kv]\nbase_url = "{saving_server[0].base_url}"\n')
    return "kv"


def test_cli_save_list_erase_restore(
    kv_profile: str, saving_server: tuple[LlamaServer, Path]
) -> None:
    fill_a_slot(make_profile(saving_server[0].base_url))
    saved = invoke("slots", "save", "c1.bin", "-p", kv_profile, "--json")
    assert saved.exit_code == 0, saved.stderr
    [record] = json.loads(saved.stdout)
    assert record["action"] == "save" and record["tokens"] > 0
    listed = invoke("slots", "list", "-p", kv_profile)
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.startswith("slot 0  n_ctx 1024  idle")
    erased = invoke("slots", "erase", "-p", kv_profile, "--slot", str(record["slot"]))
    assert erased.stdout == f"erased slot {record['slot']} ({record['tokens']} tokens)\n"
    restored = invoke("slots", "restore", "c1.bin", "-p", kv_profile, "--slot", str(record["slot"]))
    assert restored.exit_code == 0, restored.stderr
    assert restored.stdout.startswith(f"restored c1.bin into slot {record['slot']} (")
    assert restored.stderr == ""


def test_cli_without_slot_save_path_is_one_error_line(
    write_profiles: WriteProfiles, llama_think: LlamaServer
) -> None:
    write_profiles(f'[profiles.plain]\nbase_url = "{llama_think.base_url}"\n')
    result = invoke("slots", "save", "c.bin", "-p", "plain", "--slot", "0")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"llmcli: error: cannot save slots: {slots.NO_SAVE_PATH_HINT}\n"


def test_chat_cache_save_and_restore(
    kv_profile: str, saving_server: tuple[LlamaServer, Path]
) -> None:
    script = "remember me\n/cache save chat.bin\n/cache restore chat.bin\n/cache load x\n"
    result = invoke("chat", "-p", kv_profile, "--max-tokens", "2", "--no-log", input=script)
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("llmcli: ")]
    assert lines[0].startswith("llmcli: saved slot ")
    assert lines[1].startswith("llmcli: restored chat.bin into slot ")
    assert lines[2] == "llmcli: use /cache save NAME or /cache restore NAME"
    assert (saving_server[1] / "chat.bin").stat().st_size > 0


# --- spawned profiles: slot_save_path ---------------------------------------------------


def test_slot_save_path_is_checked_and_expanded(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_profiles('[profiles.s]\nspawn = true\nmodel = "m"\nslot_save_path = "~/kv"\n')
    spec = select_profile(load_profiles(), "s").spawn
    assert spec is not None and spec.slot_save_path == str(tmp_path / "kv")
    assert spec.describe()["slot_save_path"] == str(tmp_path / "kv")
    write_profiles('[profiles.s]\nspawn = true\nmodel = "m"\nslot_save_path = 5\n')
    with pytest.raises(ConfigError, match="slot_save_path in profile 's' must be a string"):
        load_profiles()


def test_slot_dir_defaults_to_the_data_dir(tmp_path: Path) -> None:
    path = spawn.slot_dir_for("demo", SpawnSpec(model="m"))
    assert path == tmp_path / "data-home" / "llmcli" / "slots" / "demo"
    assert path.is_dir()
    given = spawn.slot_dir_for("demo", SpawnSpec(model="m", slot_save_path=str(tmp_path / "kv")))
    assert given == tmp_path / "kv" and given.is_dir()
    said = SpawnSpec(model="m", extra_args=("--slot-save-path", "/x"))
    assert spawn.slot_dir_for("demo", said) is None


def test_slot_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"slot_save_path .* is not a usable directory"):
        spawn.slot_dir_for("x", SpawnSpec(model="m", slot_save_path=str(tmp_path / "file")))


def test_build_command_passes_the_slot_directory() -> None:
    argv = spawn.build_command(
        Path("/bin/llama-server"), SpawnSpec(model="m"), Path("m.gguf"),
        host="127.0.0.1", port=9, alias="m", slot_save_path=Path("/kv"),
    )  # fmt: skip
    assert argv[-2:] == ["--slot-save-path", "/kv"]


def test_a_spawned_server_can_save_its_cache(
    write_profiles: WriteProfiles, tiny_model_think: Path, tmp_path: Path
) -> None:
    write_profiles(
        f'[profiles.sp]\nspawn = true\nmodel_path = "{tiny_model_think}"\n'
        'parallel = 1\nctx = 1024\nextra_args = ["--no-warmup"]\n'
    )
    with spawn.spawned(select_profile(load_profiles(), "sp")) as (running, _server):
        fill_a_slot(running)
        saved = run(running, lambda client: slots.save_slot(client, "s.bin"))
    assert saved.slot == 0 and saved.tokens > 0
    kept = tmp_path / "data-home" / "llmcli" / "slots" / "sp" / "s.bin"
    assert kept.stat().st_size == saved.nbytes


def test_a_server_started_with_no_slots(start_llama: StartLlama) -> None:
    # The server's own words: 501 "This server does not support slots endpoint. Start it
    # with `--slots`"; without a slot id there is nothing to save from.
    profile = make_profile(start_llama(alias="tiny-no-slots", extra_args=("--no-slots",)).base_url)
    with pytest.raises(UsageError, match="does not expose /slots: start llama-server without"):
        run(profile, lambda client: slots.save_slot(client, "c.bin"))
