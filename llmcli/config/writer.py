"""Writing the user's profiles file (add, remove, default), keeping what it already says.

``add_profile``, ``remove_profile`` and ``set_default`` in ``llmcli.config.profiles`` are
the ways in. The file is edited in place
when appending gives exactly the intended document (comments survive); otherwise it is
rewritten. Either way it is replaced atomically, and never with a file that would not load.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path

from llmcli.config.schema import (
    PROFILE_NAME,
    Layer,
    check_document,
    check_fields,
    parse_toml,
    read_text,
)
from llmcli.errors import ConfigError

_DEFAULT_LINE = re.compile(r"(?m)^[ \t]*default[ \t]*=.*$")


def write_profile(
    path: Path,
    name: str,
    *,
    read_shipped: Callable[[], Layer],
    base_url: str,
    api_key_env: str | None,
    model: str | None,
    dialect: str | None,
    make_default: bool,
) -> None:
    """Add or update profile ``name`` in the file at ``path``, as ``add_profile`` says.

    ``read_shipped`` gives the shipped profiles, whose names cannot be added.
    """
    if not PROFILE_NAME.fullmatch(name):
        raise ConfigError(
            f"bad profile name {name!r}: use letters, digits, '_' and '-' (e.g. 'gpu-box')"
        )
    shipped = read_shipped()
    if name in shipped.profiles:
        raise ConfigError(
            f"profile {name!r} ships with llmcli: pick another name, or edit {path} "
            f"and set the fields to change under [profiles.{name}]"
        )
    table: dict[str, object] = {"base_url": base_url}
    for key, value in (("api_key_env", api_key_env), ("model", model), ("dialect", dialect)):
        if value is not None:
            table[key] = value
    table["base_url"] = check_fields(name, table, "").base_url  # stored normalised

    target = Path(os.path.realpath(path))  # write through a symlinked dotfile, not over it
    text = read_text(target) if target.exists() else ""
    document = parse_toml(text, target) if text else {}
    # Never rewrite a file that would not load: the user would lose what they meant.
    current = check_document(document, target)

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
    check_document(updated, target)
    _write_atomically(target, _render(text, updated, name, table, is_new, make_default))


def remove_profile(
    path: Path, name: str, *, read_shipped: Callable[[], Layer], confirm: Callable[[], bool]
) -> bool:
    """Remove profile ``name`` from the file at ``path``; shipped profiles stay.

    Refused while ``name`` is the default or a route leads to it: the file would not load.
    ``confirm`` is asked once every check has passed; False leaves the file as it was.
    """
    shipped = read_shipped()
    if name in shipped.profiles:
        raise ConfigError(f"profile {name!r} ships with llmcli and cannot be removed")
    target = Path(os.path.realpath(path))
    text = read_text(target) if target.exists() else ""
    document = parse_toml(text, target) if text else {}
    current = check_document(document, target)
    if name not in current.profiles:
        raise ConfigError(f"no profile {name!r} in {target}: 'llmcli profiles list' shows them")
    default = current.default if current.default is not None else shipped.default
    if default == name:
        raise ConfigError(
            f"profile {name!r} is the default: make another the default first"
            " ('llmcli profiles default NAME')"
        )
    for layer in (shipped, current):
        for other, fields in layer.profiles.items():
            if other != name and name in fields.routes.values():
                raise ConfigError(
                    f"profile {other!r} routes models to {name!r}: remove that route from"
                    f" {layer.path} first"
                )
    updated = _copy_tables(document)
    tables = updated["profiles"]
    assert isinstance(tables, dict)
    del tables[name]
    if not tables:
        del updated["profiles"]
    check_document(updated, target)
    if not confirm():
        return False
    _write_atomically(target, _render_without(text, updated, name))
    return True


def set_default(path: Path, name: str, *, read_shipped: Callable[[], Layer]) -> None:
    """Write ``default = "NAME"`` in the file at ``path``; ``name`` must be a profile."""
    shipped = read_shipped()
    target = Path(os.path.realpath(path))
    text = read_text(target) if target.exists() else ""
    document = parse_toml(text, target) if text else {}
    current = check_document(document, target)
    known = {*shipped.profiles, *current.profiles}
    if name not in known:
        raise ConfigError(
            f"unknown profile {name!r}; known: {', '.join(sorted(known))}"
            " ('llmcli profiles add' makes one)"
        )
    updated = _copy_tables(document)
    updated["default"] = name
    check_document(updated, target)
    _write_atomically(target, _render(text, updated, name, {}, False, True))


def _render_without(text: str, document: Mapping[str, object], name: str) -> str:
    """Cut ``[profiles.NAME]`` and its sub-tables out of the text when that gives exactly
    ``document`` (comments elsewhere survive); else rewrite it all."""
    import tomli_w

    header = re.compile(
        rf"(?m)^[ \t]*\[[ \t]*profiles[ \t]*\.[ \t]*\"?{re.escape(name)}\"?[ \t]*(\.[^\]]*)?\][^\n]*\n?"
    )
    candidate = text
    while match := header.search(candidate):
        following = re.compile(r"(?m)^[ \t]*\[").search(candidate, match.end())
        end = following.start() if following else len(candidate)
        candidate = candidate[: match.start()] + candidate[end:]
    try:
        if tomllib.loads(candidate) == document:
            return candidate
    except tomllib.TOMLDecodeError:
        pass
    return tomli_w.dumps(document)


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
