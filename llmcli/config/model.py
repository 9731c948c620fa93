"""What a profile is, once read: frozen ``Profile``, ``SpawnSpec`` and ``ProfileSet`` values.

``llmcli.config.profiles`` builds them (and is where callers import them from); this
module holds the values themselves and the words used to describe them to people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from llmcli.config.frozen import thaw

DIALECTS = ("zen", "llamacpp", "openai")
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
KEY_SOURCE_PROFILE = "profile"
KEY_SOURCE_NONE = "none"


@dataclass(frozen=True, slots=True)
class SpawnSpec:
    """How to start a profile's llama-server: the fields of a ``spawn = true`` profile.

    ``model_path`` is a file; without it ``model`` (the profile's model) names one in the
    model directories. ``None`` leaves a flag to llama-server's own default.
    """

    model_path: str | None = None
    model: str | None = None
    ctx: int | None = None
    parallel: int | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    flash_attn: str | None = None
    embeddings: bool = False
    chat_template_file: str | None = None
    extra_args: tuple[str, ...] = ()
    server_bin: str | None = None
    slot_save_path: str | None = None
    draft_model: str | None = None
    draft_max: int | None = None

    def describe(self) -> dict[str, object]:
        """The fields that are set, for ``profiles show`` and JSON."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name in self.__slots__
            if (value := getattr(self, name)) not in (None, False, ())
        }


@dataclass(frozen=True, slots=True)
class Profile:
    """One backend, fully resolved: the key is read from the environment already.

    ``api_key`` is ``None`` when there is no key: send no ``Authorization`` header then.
    ``key_source`` says where the key came from: ``"env NAME"``, ``"profile"`` or
    ``"none"``; ``api_key_env`` names the variable a user should set (for error hints).
    ``dialect`` ``None`` means unknown: ask the server. ``overrides`` lists environment
    variables that changed the profile after it was read (``("BACKEND_URL",)``).
    ``spawn`` is set when llmcli starts the server itself; ``base_url`` then has port 0
    until it runs (unless the profile names a port).
    """

    name: str
    base_url: str
    api_key: str | None = field(repr=False)
    key_source: str
    api_key_env: str | None
    model: str | None
    dialect: str | None
    connect_timeout: float
    read_timeout: float
    # Header values may hold credentials too; params are not hashable. Both stay out of
    # hash() (equal profiles still hash equal) and headers out of repr().
    headers: Mapping[str, str] = field(repr=False, hash=False)
    params: Mapping[str, object] = field(hash=False)
    source: str
    overrides: tuple[str, ...] = ()
    spawn: SpawnSpec | None = None
    # (glob, profile) pairs in file order: the first pattern matching a model name wins.
    routes: tuple[tuple[str, str], ...] = ()
    ca_file: str | None = None  # PEM roots that replace the default ones (llmcli.net.settings)
    # Set when BACKEND_URL replaced the URL: where the profile itself points (or says it
    # starts a server), and the model it names when BACKEND_URL's server is another one.
    own_base_url: str | None = None
    dropped_model: str | None = None

    def request_params(self) -> dict[str, object]:
        """Return ``params`` as plain JSON-ready dicts and lists (a fresh copy)."""
        thawed = thaw(self.params)
        assert isinstance(thawed, dict)
        return thawed

    def describe(self) -> dict[str, object]:
        """Describe the profile for people and JSON; the key is never part of it."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "dialect": self.dialect,
            "key": describe_key(self),
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "headers": sorted(self.headers),
            "params": self.request_params(),
            "source": self.source,
            "overrides": list(self.overrides),
            "spawn": None if self.spawn is None else self.spawn.describe(),
            "routes": dict(self.routes),
            "ca_file": self.ca_file,
            "own_base_url": self.own_base_url,
            "dropped_model": self.dropped_model,
        }


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """Every profile by name (shipped first, in file order), the default, the files read."""

    profiles: Mapping[str, Profile] = field(hash=False)
    default: str
    files: tuple[Path, ...]


def describe_key(profile: Profile) -> str:
    """Say whether a key is set and where from, without any character of the key."""
    if profile.api_key is not None:
        if profile.key_source == KEY_SOURCE_PROFILE and profile.api_key_env:
            return f"set (profile; {profile.api_key_env} is not set)"
        return f"set ({profile.key_source})"
    if profile.api_key_env:
        return f"none ({profile.api_key_env} is not set)"
    return "none"


def describe_model(profile: Profile, model: str | None = None) -> str:
    """The model a request names, and why when it is the server's choice.

    ``model`` is one the user named (``-m``, ``/model``); it wins over the profile's.
    """
    if model or profile.model:
        return model or profile.model or ""
    reason = dropped_model_reason(profile)
    return f"server default ({reason})" if reason else "server default"


def dropped_model_reason(profile: Profile) -> str | None:
    """Why the profile's own model is not sent, when BACKEND_URL is the reason."""
    if not profile.dropped_model:
        return None
    return (
        f"BACKEND_URL points at another server than profile {profile.name}'s,"
        f" so its model {profile.dropped_model} is not sent"
    )


def describe_url(profile: Profile) -> str:
    """Where requests go, and, when BACKEND_URL decided it, in place of what."""
    if profile.own_base_url is None:
        return profile.base_url
    return (
        f"{profile.base_url} (from BACKEND_URL, which every profile follows;"
        f" profile {profile.name}'s own: {profile.own_base_url})"
    )


def detect_dialect(url: str) -> str | None:
    """Tell the dialect from a URL alone: ``"zen"`` for opencode.ai, else ``None`` (ask)."""
    host = urlsplit(url).hostname or ""
    if host == "opencode.ai" or host.endswith(".opencode.ai"):
        return "zen"
    return None
