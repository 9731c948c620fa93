"""Speculative decoding for spawned servers: draft_model and draft_max, to the real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from conftest import WriteProfiles

from llmcli.config.profiles import Profile, SpawnSpec, load_profiles, select_profile
from llmcli.errors import ConfigError
from llmcli.local import spawn
from llmcli.wire.client import ChatRequest, Client
from llmcli.wire.events import Timings

SPAWNED = '[profiles.s]\nspawn = true\nmodel = "m"\n'


def test_draft_fields_are_read(
    write_profiles: WriteProfiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_profiles(SPAWNED + 'draft_model = "~/d.gguf"\ndraft_max = 4\n')
    spec = select_profile(load_profiles(), "s").spawn
    assert spec is not None
    assert (spec.draft_model, spec.draft_max) == (str(tmp_path / "d.gguf"), 4)
    assert spec.describe()["draft_max"] == 4


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("draft_max = 4\n", "sets draft_max but no draft_model"),
        ('draft_model = "d"\ndraft_max = 0\n', "draft_max in profile 's' must be at least 1, got 0"),
        ('draft_model = "d"\ndraft_max = "4"\n', "draft_max in profile 's' must be an integer"),
        ("draft_model = 3\n", "draft_model in profile 's' must be a string"),
    ],
)  # fmt: skip
def test_bad_draft_fields(write_profiles: WriteProfiles, fields: str, message: str) -> None:
    write_profiles(SPAWNED + fields)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_profiles()


def command(spec: SpawnSpec, draft: Path | None) -> list[str]:
    return spawn.build_command(
        Path("/bin/llama-server"), spec, Path("m.gguf"),
        host="127.0.0.1", port=9, alias="m", draft_model=draft,
    )  # fmt: skip


def test_build_command_with_a_draft_model() -> None:
    argv = command(SpawnSpec(model="m", draft_model="d", draft_max=4), Path("/d.gguf"))
    assert argv[13:] == [
        "--spec-draft-model", "/d.gguf", "--spec-type", "draft-simple", "--spec-draft-n-max", "4",
    ]  # fmt: skip
    # The profile's own --spec-type wins over the default one.
    spec = SpawnSpec(model="m", draft_model="d", extra_args=("--spec-type", "draft-eagle3"))
    argv = command(spec, Path("/d.gguf"))
    assert argv[13:] == ["--spec-draft-model", "/d.gguf", "--spec-type", "draft-eagle3"]
    assert "--spec-draft-model" not in command(SpawnSpec(model="m"), None)


def test_resolve_draft_model(
    tiny_model_think: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spawn.resolve_draft_model(SpawnSpec(model="m")) is None
    as_path = SpawnSpec(model="m", draft_model=str(tiny_model_think))
    assert spawn.resolve_draft_model(as_path) == tiny_model_think
    with pytest.raises(ConfigError, match=r"draft_model '/nope/d\.gguf': no such file"):
        spawn.resolve_draft_model(SpawnSpec(model="m", draft_model="/nope/d.gguf"))
    models = tmp_path / "models"
    models.mkdir()
    (models / "drafty.gguf").symlink_to(tiny_model_think)
    monkeypatch.setenv("LLMCLI_MODELS", str(models))
    by_name = SpawnSpec(model="m", draft_model="drafty")
    assert spawn.resolve_draft_model(by_name) == models / "drafty.gguf"
    with pytest.raises(ConfigError, match="model 'missing' not found"):
        spawn.resolve_draft_model(SpawnSpec(model="m", draft_model="missing"))


def test_a_model_drafting_for_itself(write_profiles: WriteProfiles, tiny_model_think: Path) -> None:
    write_profiles(
        f'[profiles.spec]\nspawn = true\nmodel_path = "{tiny_model_think}"\n'
        f'draft_model = "{tiny_model_think}"\ndraft_max = 4\n'
        'parallel = 1\nctx = 1024\nthreads = 2\nextra_args = ["--no-warmup"]\n'
    )

    async def ask(client: Client) -> list[Timings]:
        request = ChatRequest(
            messages=[{"role": "user", "content": "hi"}], max_tokens=16, temperature=0.0
        )
        events = await client.complete_chat(request)
        return [event for event in events if isinstance(event, Timings)]

    async def go(profile: Profile) -> list[Timings]:
        async with Client(profile) as client:
            return await ask(client)

    with spawn.spawned(select_profile(load_profiles(), "spec")) as (running, _server):
        [timings] = asyncio.run(go(running))
    # Pinned from the real server: greedy sampling with itself as the draft accepts every
    # drafted token; 16 tokens in rounds of 1 + up to 4 drafted give 12 drafted.
    assert timings.predicted_n == 16
    assert timings.draft_n == 12
    assert timings.draft_n_accepted == 12
