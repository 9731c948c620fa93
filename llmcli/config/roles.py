"""Roles: named system prompts with their defaults, read from ``roles.toml`` and checked.

A role is a system prompt and the defaults that go with it (model, profile, sampling), and
optionally a prompt template whose ``{input}`` receives what ``complete`` was given (the
argument, then piped stdin). Roles live in their own file, ``roles.toml`` in the config
directory (``$LLMCLI_ROLES`` names another), not in ``profiles.toml``: a profile says where
a server is and is rewritten by ``profiles add/rm/default``, while roles are prompts that
people copy between machines whatever servers those have. A few roles are built in; a
role of the same name in the file replaces one whole (fields are not merged).

The TOML schema::

    [roles.NAME]
    description = "one line for roles list"
    system = "You are ..."                 # the system prompt
    prompt = "Summarise:\\n\\n{input}"       # complete only; {{ and }} are literal braces
    profile = "local"                      # used unless -p is given
    model = "qwen3-32b"                    # used unless -m is given
    temperature = 0.2                      # also top_p, max_tokens, seed, stop = ["..."]

The template is filled by one scan of the template, never by ``str.format``: the input is
inserted as it is, so braces (or ``{input}``) inside piped text are never expanded, and a
template can reach nothing but ``{input}``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from llmcli.config import paths
from llmcli.config.schema import (
    PROFILE_NAME,
    did_you_mean,
    listing,
    parse_toml,
    read_text,
    type_name,
)
from llmcli.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
A = TypeVar("A", bound="Asked")

ROLES_FILE_ENV = "LLMCLI_ROLES"
ROLES_FILENAME = "roles.toml"
PLACEHOLDER = "{input}"
# The same bounds the command line's options have (llmcli.commands.options).
MAX_TOKENS_LIMIT = 10_000_000
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{input\}|[{}]")


@dataclass(frozen=True, slots=True)
class Role:
    """One role, checked; ``None`` means the role leaves that setting alone."""

    name: str
    description: str | None = None
    system: str | None = None
    prompt: str | None = None
    profile: str | None = None
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    source: str = "built-in"

    def summary(self) -> str:
        """What the role sets, in a few words: ``system prompt, model qwen3, temperature 0.2``."""
        parts = ["system prompt"] if self.system else []
        if self.prompt is not None:
            parts.append("prompt template")
        for key in ("profile", "model", "temperature", "top_p", "max_tokens", "seed"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key} {value}")
        if self.stop:
            parts.append(f"stop {list(self.stop)}")
        return ", ".join(parts) or "nothing"


ROLE_FIELDS = tuple(spec.name for spec in fields(Role) if spec.name not in ("name", "source"))

BUILT_IN: tuple[Role, ...] = (
    Role(
        name="summarise",
        description="Summarise the input in a few bullet points",
        system="You summarise text accurately and briefly. Never add facts that are not in it.",
        prompt="Summarise the following in at most five bullet points:\n\n{input}",
        temperature=0.2,
    ),
    Role(
        name="commit-message",
        description="A git commit message for a diff (git diff | llmcli complete --role ...)",
        system=(
            "You write git commit messages: a subject line of at most 72 characters in the"
            " imperative mood, a blank line, then why the change was made. Plain text only."
        ),
        prompt="Write a commit message for this change:\n\n{input}",
        temperature=0.2,
    ),
)


@dataclass(frozen=True, slots=True)
class RoleSet:
    """The built-in roles with the user's file on top; ``file`` is that file's path."""

    roles: Mapping[str, Role]
    file: Path

    def get(self, name: str) -> Role:
        """The role ``name``, or one line naming the nearest one and where roles live."""
        role = self.roles.get(name)
        if role is not None:
            return role
        if not PROFILE_NAME.fullmatch(name):
            raise UsageError(
                f"bad role name {name!r}: use letters, digits, '_' and '-'"
                " (llmcli roles list shows them)"
            )
        raise UsageError(
            f"unknown role {name!r}{did_you_mean(name, self.roles)}; known: {listing(self.roles)}"
            f" (add roles to {self.file})"
        )


def roles_path(env: Mapping[str, str] | None = None) -> Path:
    """The user's roles file: ``$LLMCLI_ROLES``, else ``roles.toml`` in the config directory."""
    env = os.environ if env is None else env
    explicit = env.get(ROLES_FILE_ENV, "")
    if explicit:
        return paths.expand_home(explicit, env)
    return paths.config_dir(env) / ROLES_FILENAME


def load_roles(env: Mapping[str, str] | None = None) -> RoleSet:
    """The built-in roles, then the user's file (a missing file is fine unless named by
    ``$LLMCLI_ROLES``); a broken file is one line naming it, the role and the field."""
    env = os.environ if env is None else env
    path = roles_path(env)
    roles = {role.name: role for role in BUILT_IN}
    try:
        text = read_text(path)
    except FileNotFoundError:
        if env.get(ROLES_FILE_ENV):
            raise ConfigError(f"{path}: no such file (named by {ROLES_FILE_ENV})") from None
        text = None
    if text is not None:
        roles.update(check_roles_document(parse_toml(text, path), path))
    return RoleSet(roles=MappingProxyType(roles), file=path)


def check_roles_document(document: Mapping[str, object], path: Path) -> dict[str, Role]:
    """The ``[roles.NAME]`` tables of one file, checked."""
    prefix = f"{path}: "
    for key, value in document.items():
        if key == "roles":
            continue
        hint = did_you_mean(key, ("roles",))
        if not hint and isinstance(value, dict) and PROFILE_NAME.fullmatch(key):
            hint = f" (did you mean [roles.{key}]?)"
        raise ConfigError(f"{prefix}unknown top-level key {key!r}{hint}; valid: roles")
    tables = document.get("roles", {})
    if not isinstance(tables, dict):
        raise ConfigError(
            f"{prefix}roles must be a table of [roles.NAME] tables, got {type_name(tables)}"
        )
    roles: dict[str, Role] = {}
    for name, table in tables.items():
        if not PROFILE_NAME.fullmatch(name):
            raise ConfigError(f"{prefix}bad role name {name!r}: use letters, digits, '_' and '-'")
        if not isinstance(table, dict):
            raise ConfigError(
                f"{prefix}role {name!r} must be a table ([roles.{name}]), got {type_name(table)}"
            )
        roles[name] = check_role(name, table, path)
    return roles


def check_role(name: str, table: Mapping[str, object], path: Path) -> Role:
    """One ``[roles.NAME]`` table as a :class:`Role`; unknown keys and wrong types refused."""
    values: dict[str, object] = {}
    for key, value in table.items():
        where = f"{path}: {key} in role {name!r}"
        match key:
            case "description" | "system":
                values[key] = _check_text(value, where, example='"You are a careful editor."')
            case "prompt":
                template = _check_text(value, where, example='"Summarise:\\n\\n{input}"')
                check_template(template, where)
                values[key] = template
            case "profile":
                profile = _check_text(value, where, example='"local"')
                if not PROFILE_NAME.fullmatch(profile):
                    raise ConfigError(f"{where}: {profile!r} is not a profile name")
                values[key] = profile
            case "model":
                values[key] = _check_text(value, where, example='"qwen3-32b"')
            case "temperature":
                values[key] = _check_number(value, where, 0, 100, example="0.7")
            case "top_p":
                values[key] = _check_number(value, where, 0, 1, example="0.9")
            case "max_tokens":
                values[key] = _check_integer(value, where, 1, MAX_TOKENS_LIMIT)
            case "seed":
                values[key] = _check_integer(value, where, None, None)
            case "stop":
                if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                    raise ConfigError(
                        f'{where} must be an array of strings (["END"]), got {type_name(value)}'
                    )
                values[key] = tuple(value)
            case _:
                hint = did_you_mean(key, ROLE_FIELDS) or f"; valid fields: {', '.join(ROLE_FIELDS)}"
                raise ConfigError(f"{path}: unknown field {key!r} in role {name!r}{hint}")
    return Role(name=name, source=str(path), **values)  # type: ignore[arg-type]


def check_template(template: str, where: str) -> None:
    """Refuse a brace that is neither ``{input}`` nor doubled (``{{`` / ``}}``)."""
    for match in _TEMPLATE_TOKEN.finditer(template):
        if match.group() in ("{", "}"):
            rest = template[match.start() : match.start() + 20].split("\n")[0]
            raise ConfigError(
                f"{where}: a lone {match.group()!r} at {rest!r}; the only placeholder is"
                " {input}, and {{ or }} write a literal brace"
            )


def fill_prompt(role: Role, text: str | None) -> str | None:
    """The message ``complete`` sends for ``role`` given ``text`` (the argument, then stdin).

    Without a template, ``text`` as it is. With one, ``{input}`` becomes ``text``; a
    template without ``{input}`` gets ``text`` after a blank line. ``None`` when there is
    neither a template nor text, or a template that needs input gets none.
    """
    if role.prompt is None:
        return text
    needs_input = PLACEHOLDER in _TEMPLATE_TOKEN.findall(role.prompt)
    if needs_input and not text:
        return None
    pieces: list[str] = []
    for token, literal in _split_template(role.prompt):
        pieces.append(literal)
        if token == PLACEHOLDER:
            pieces.append(text or "")
    filled = "".join(pieces)
    if not needs_input and text:
        filled = f"{filled.rstrip()}\n\n{text}"
    return filled


@dataclass(frozen=True, slots=True)
class Asked:
    """What a command was told on its command line of the settings a role gives defaults
    for; ``complete`` uses it as it is, ``chat``'s setup extends it. Unset is None (or no
    ``--stop``), which :func:`with_role` fills from the role."""

    profile: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


# What a role sets when the command line leaves it unset.
SETTINGS = tuple(field.name for field in fields(Asked))


def check_role_profile(
    role: Role | None,
    given: str | None,
    known: Collection[str],
    *,
    instead: str = "give -p PROFILE",
) -> None:
    """The profile a role names, when it is the one used (no ``-p`` given), must exist: one
    line naming the role and its file, not a bare "unknown profile" the user never typed;
    ``instead`` says what else the user can do."""
    if role is None or role.profile is None or given is not None or role.profile in known:
        return
    raise ConfigError(
        f"role {role.name!r} uses profile {role.profile!r}, which is not defined"
        f"{did_you_mean(role.profile, known)}; known: {', '.join(sorted(known))}"
        f" (fix the role in {role.source}, or {instead})"
    )


def with_role(values: A, role: Role | None) -> A:
    """``values`` (``complete``'s :class:`Asked`, or ``chat``'s setup that extends it) with
    each setting it leaves unset taken from ``role``: the command line wins."""
    if role is None:
        return values
    changes = {
        key: getattr(role, key)
        for key in SETTINGS
        if _unset(getattr(values, key)) and not _unset(getattr(role, key))
    }
    return replace(values, **changes)


def _unset(value: object) -> bool:
    return value is None or value == ()


def _split_template(template: str) -> list[tuple[str | None, str]]:
    """(placeholder or None, the literal text before it), the braces unescaped."""
    parts: list[tuple[str | None, str]] = []
    literal: list[str] = []
    last = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        literal.append(template[last : match.start()])
        last = match.end()
        token = match.group()
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token == PLACEHOLDER:
            parts.append((PLACEHOLDER, "".join(literal)))
            literal = []
        else:  # a lone brace: check_template refuses it in files; kept as it is here
            literal.append(token)
    literal.append(template[last:])
    parts.append((None, "".join(literal)))
    return parts


def _check_text(value: object, where: str, *, example: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string ({example}), got {type_name(value)}")
    if not value.strip():
        raise ConfigError(f"{where} is empty; set it ({example}) or remove the line")
    return value


def _check_number(value: object, where: str, low: float, high: float, *, example: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"{where} must be a number (e.g. {example}), got {type_name(value)}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{where} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _check_integer(value: object, where: str, low: int | None, high: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, got {type_name(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{where} must be from {low} to {high:,}, got {value}")
    return value
