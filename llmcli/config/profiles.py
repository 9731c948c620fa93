"""Backend profiles: shipped defaults, the user's file on top, the environment last.

A profile names one backend: its base URL, where its key comes from, a default model, the
dialect it speaks, timeouts, extra headers and extra request fields. This module reads
the layers, merges them, builds frozen ``Profile`` values and selects one; it never
touches the network and never prints. Callers import the profile API from here.

Layers, each overriding the one before field by field:

1. ``llmcli/config/profiles.toml``, shipped with the package (``zen``, ``local`` and ``demo``);
2. the user's file: ``$LLMCLI_CONFIG``, else ``profiles.toml`` in the platform config
   directory (``$XDG_CONFIG_HOME/llmcli`` or ``~/.config/llmcli`` on Linux);
3. at selection, ``$BACKEND_URL`` (with ``$BACKEND_API_KEY``) for the selected profile.

The pieces, one job each: ``model`` (the frozen values and how they are described),
``schema`` (the file's fields, their checks and the TOML schema), ``writer`` (what
``add_profile`` does to the user's file), ``paths`` (where that file is).

A user table overrides a shipped one field by field; ``headers``, ``params`` and
``routes`` are merged key by key, ``timeout`` is replaced whole. Route targets must be
profiles, and following routes must never come back to where it started.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from llmcli.config import paths
from llmcli.config.frozen import freeze
from llmcli.config.model import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DIALECTS,
    KEY_SOURCE_NONE,
    KEY_SOURCE_PROFILE,
    Profile,
    ProfileSet,
    SpawnSpec,
    describe_key,
    describe_model,
    describe_url,
    detect_dialect,
    dropped_model_reason,
)
from llmcli.config.schema import (
    EXAMPLE_URL,
    FLASH_ATTN_VALUES,
    PROFILE_FIELDS,
    SPAWN_FIELDS,
    TIMEOUT_KEYS,
    TOP_LEVEL_KEYS,
    Layer,
    TableFields,
    check_document,
    check_url,
    did_you_mean,
    listing,
    parse_toml,
    read_text,
)
from llmcli.errors import ConfigError

__all__ = [
    "BACKEND_KEY_ENV",
    "BACKEND_URL_ENV",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DIALECTS",
    "FLASH_ATTN_VALUES",
    "KEY_SOURCE_NONE",
    "KEY_SOURCE_PROFILE",
    "PROFILE_FIELDS",
    "SHIPPED_PATH",
    "SPAWN_DEFAULT_URL",
    "SPAWN_FIELDS",
    "TIMEOUT_KEYS",
    "TOP_LEVEL_KEYS",
    "Profile",
    "ProfileSet",
    "SpawnSpec",
    "add_profile",
    "describe_key",
    "describe_model",
    "describe_url",
    "detect_dialect",
    "dropped_model_reason",
    "load_profiles",
    "remove_profile",
    "select_profile",
    "set_default",
    "user_config_path",
]

SHIPPED_PATH = Path(__file__).with_name("profiles.toml")
# A spawned profile without base_url: port 0 stands for "a free port, picked at start".
SPAWN_DEFAULT_URL = "http://127.0.0.1:0/v1"
BACKEND_URL_ENV = "BACKEND_URL"
BACKEND_KEY_ENV = "BACKEND_API_KEY"

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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

    merged: dict[str, TableFields] = {}
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
            f"{did_you_mean(default_name, merged)}; known: {listing(merged)}"
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
            f"unknown profile {name!r}{origin}{did_you_mean(name, profiles.profiles)}; "
            f"known: {listing(profiles.profiles)}"
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
    # The writer loads only for 'profiles add', not on every start.
    from llmcli.config.writer import write_profile

    write_profile(
        path,
        name,
        read_shipped=_read_shipped,
        base_url=base_url,
        api_key_env=api_key_env,
        model=model,
        dialect=dialect,
        make_default=make_default,
    )


def remove_profile(path: Path, name: str, *, confirm: Callable[[], bool] = lambda: True) -> bool:
    """Remove profile ``name`` from the user's file at ``path``; shipped ones are refused.

    ``confirm`` is asked after every check has passed; returns whether it was removed.
    """
    from llmcli.config.writer import remove_profile as remove

    return remove(path, name, read_shipped=_read_shipped, confirm=confirm)


def set_default(path: Path, name: str) -> None:
    """Make ``name`` (a shipped or the user's profile) the default, in the file at ``path``."""
    from llmcli.config.writer import set_default as write_default

    write_default(path, name, read_shipped=_read_shipped)


# --- reading --------------------------------------------------------------------------


def _read_shipped() -> Layer:
    return check_document(parse_toml(read_text(SHIPPED_PATH), SHIPPED_PATH), SHIPPED_PATH)


def _read_layer(path: Path, *, must_exist: bool) -> Layer | None:
    try:
        text = read_text(path)
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                f"{path}: no such file (named by LLMCLI_CONFIG); create it with "
                "'llmcli profiles add' or unset LLMCLI_CONFIG"
            ) from None
        return None
    return check_document(parse_toml(text, path), path)


# --- building -------------------------------------------------------------------------


def _check_route_targets(profiles: Mapping[str, Profile]) -> None:
    """Every route names a profile, and no chain of routes comes back to where it began."""
    for profile in profiles.values():
        for pattern, target in profile.routes:
            if target not in profiles:
                raise ConfigError(
                    f"{profile.source}: routes in profile {profile.name!r}: {pattern!r} goes to "
                    f"{target!r}, which is not a profile{did_you_mean(target, profiles)}; "
                    f"known: {listing(profiles)}"
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


def _merge(base: TableFields, override: TableFields) -> TableFields:
    return TableFields(
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


def _build_profile(name: str, fields: TableFields, source: Path, env: Mapping[str, str]) -> Profile:
    spawn = _build_spawn(name, fields, source) if fields.spawn else None
    if spawn is not None:
        fields = replace(
            fields,
            base_url=fields.base_url or SPAWN_DEFAULT_URL,
            dialect=fields.dialect or "llamacpp",
        )
    if fields.base_url is None:
        raise ConfigError(
            f"{source}: profile {name!r} has no base_url; add base_url = {EXAMPLE_URL} "
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
        params=MappingProxyType({key: freeze(value) for key, value in fields.params.items()}),
        source=str(source),
        spawn=spawn,
        routes=tuple(fields.routes.items()),
        ca_file=str(paths.expand_home(fields.ca_file, env)) if fields.ca_file else None,
    )


def _build_spawn(name: str, fields: TableFields, source: Path) -> SpawnSpec:
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
    base_url = check_url(raw_url, BACKEND_URL_ENV)
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
