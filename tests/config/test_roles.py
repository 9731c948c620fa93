"""Roles (``llmcli.config.roles``): the file's schema, one line per mistake naming the file,
the role and the key; the template's one placeholder; the command line winning over a role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmcli.config.roles import (
    BUILT_IN,
    Asked,
    Role,
    fill_prompt,
    load_roles,
    roles_path,
    with_role,
)
from llmcli.errors import ConfigError, UsageError


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "roles.toml"
    path.write_text(text)
    return {"LLMCLI_ROLES": str(path)}


def test_the_file_lives_in_the_config_directory() -> None:
    env = {"XDG_CONFIG_HOME": "/cfg"}
    assert roles_path(env) == Path("/cfg/llmcli/roles.toml")
    assert roles_path({**env, "LLMCLI_ROLES": "~/r.toml", "HOME": "/home/u"}) == Path(
        "/home/u/r.toml"
    )


def test_without_a_file_the_built_in_roles_are_there(tmp_path: Path) -> None:
    roles = load_roles({"XDG_CONFIG_HOME": str(tmp_path)})
    assert list(roles.roles) == [role.name for role in BUILT_IN]
    assert roles.file == tmp_path / "llmcli" / "roles.toml"


def test_a_role_with_every_field(tmp_path: Path) -> None:
    env = write(
        tmp_path,
        """
[roles.reviewer]
description = "Reviews code"
system = "You review code."
prompt = "Review:\\n\\n{input}"
profile = "local"
model = "qwen3"
temperature = 0
top_p = 0.9
max_tokens = 300
seed = 7
stop = ["END"]
""",
    )
    role = load_roles(env).get("reviewer")
    assert role == Role(
        name="reviewer",
        description="Reviews code",
        system="You review code.",
        prompt="Review:\n\n{input}",
        profile="local",
        model="qwen3",
        temperature=0.0,
        top_p=0.9,
        max_tokens=300,
        seed=7,
        stop=("END",),
        source=env["LLMCLI_ROLES"],
    )
    assert role.summary() == (
        "system prompt, prompt template, profile local, model qwen3, temperature 0.0,"
        " top_p 0.9, max_tokens 300, seed 7, stop ['END']"
    )


def test_a_role_in_the_file_replaces_the_built_in_one_whole(tmp_path: Path) -> None:
    env = write(tmp_path, '[roles.summarise]\nsystem = "Be terse."\n')
    role = load_roles(env).get("summarise")
    assert (role.system, role.prompt, role.temperature) == ("Be terse.", None, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[roles.x]\ntemprature = 1",
            r"unknown field 'temprature' in role 'x' \(did you mean 'temperature'\?\)",
        ),
        (
            "[roles.x]\ncolour = 1",
            r"unknown field 'colour' in role 'x'; valid fields: description, system",
        ),
        ("[role.x]\nsystem = 'a'", r"unknown top-level key 'role' \(did you mean 'roles'\?\)"),
        ("[x]\nsystem = 'a'", r"unknown top-level key 'x' \(did you mean \[roles\.x\]\?\)"),
        ("roles = 1", r"roles must be a table of \[roles\.NAME\] tables, got an integer"),
        ("[roles]\nx = 'a'", r"role 'x' must be a table \(\[roles\.x\]\), got a string"),
        ('[roles."a b"]\nsystem = "s"', r"bad role name 'a b'"),
        ("[roles.x]\nsystem = 3", r"system in role 'x' must be a string"),
        ("[roles.x]\nsystem = '  '", r"system in role 'x' is empty"),
        (
            "[roles.x]\ntemperature = 'hot'",
            r"temperature in role 'x' must be a number \(e\.g\. 0\.7\), got a string",
        ),
        ("[roles.x]\ntemperature = true", r"temperature in role 'x' must be a number"),
        (
            "[roles.x]\ntemperature = nan",
            r"temperature in role 'x' must be a number from 0 to 100, got nan",
        ),
        ("[roles.x]\ntop_p = 1.5", r"top_p in role 'x' must be a number from 0 to 1, got 1\.5"),
        (
            "[roles.x]\nmax_tokens = 0",
            r"max_tokens in role 'x' must be from 1 to 10,000,000, got 0",
        ),
        ("[roles.x]\nmax_tokens = 1.5", r"max_tokens in role 'x' must be an integer, got a float"),
        ("[roles.x]\nseed = '1'", r"seed in role 'x' must be an integer, got a string"),
        ("[roles.x]\nstop = 'END'", r"stop in role 'x' must be an array of strings"),
        ("[roles.x]\nstop = [1]", r"stop in role 'x' must be an array of strings"),
        ("[roles.x]\nprofile = 'no way'", r"profile in role 'x': 'no way' is not a profile name"),
        (
            "[roles.x]\nprompt = 'Hi {name}'",
            r"prompt in role 'x': a lone '\{' at '\{name\}'; the only placeholder is \{input\}",
        ),
        ("[roles.x]\nprompt = 'a } b'", r"prompt in role 'x': a lone '\}'"),
        ("[roles.x]\nprompt = '{0.__class__}'", r"a lone '\{'"),
        ("[roles.x\nsystem = 'a'", r"line 1, column \d+: "),
    ],
)
def test_each_mistake_is_one_line_naming_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    env = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_roles(env)
    line = str(error.value)
    assert line.startswith(f"{env['LLMCLI_ROLES']}: "), line
    assert "\n" not in line
    assert re.search(message, line), line


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "roles.toml"
    path.write_bytes(b"[roles.x]\nsystem = '\xe9'\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(bad byte at offset 20\)"):
        load_roles({"LLMCLI_ROLES": str(path)})


def test_a_file_named_by_the_variable_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file \(named by LLMCLI_ROLES\)"):
        load_roles({"LLMCLI_ROLES": str(tmp_path / "nope.toml")})


def test_an_unknown_role_names_the_nearest_one(tmp_path: Path) -> None:
    roles = load_roles({"XDG_CONFIG_HOME": str(tmp_path)})
    with pytest.raises(UsageError) as error:
        roles.get("sumarise")
    assert str(error.value) == (
        "unknown role 'sumarise' (did you mean 'summarise'?); known: commit-message, summarise"
        f" (add roles to {tmp_path}/llmcli/roles.toml)"
    )
    with pytest.raises(UsageError, match="bad role name"):
        roles.get("../x")


def _role(prompt: str | None) -> Role:
    return Role(name="t", prompt=prompt)


@pytest.mark.parametrize(
    ("prompt", "text", "filled"),
    [
        (None, "hello", "hello"),
        (None, None, None),
        ("Sum up:\n\n{input}", "notes", "Sum up:\n\nnotes"),
        ("{input} and {input}", "x", "x and x"),
        ('JSON like {{"a": 1}} for {input}', "y", 'JSON like {"a": 1} for y'),
        ("{{input}} stays", "z", "{input} stays\n\nz"),  # escaped: not a placeholder
        ("Tell a joke.", None, "Tell a joke."),
        ("Tell a joke.", "about cats", "Tell a joke.\n\nabout cats"),
        ("Sum up: {input}", None, None),
        ("Sum up: {input}", "", None),
        # The input is inserted as it is: never scanned, never formatted.
        ("<{input}>", "{input} {0.__class__} {{", "<{input} {0.__class__} {{>"),
    ],
)
def test_the_template_has_one_placeholder_and_escaped_braces(
    prompt: str | None, text: str | None, filled: str | None
) -> None:
    assert fill_prompt(_role(prompt), text) == filled


Given = Asked


def test_the_command_line_wins_and_the_role_fills_the_rest() -> None:
    role = Role(name="r", system="sys", model="m", profile="p", temperature=0.0, stop=("X",))
    assert with_role(Given(), role) == Given(
        profile="p", model="m", system="sys", temperature=0.0, stop=("X",)
    )
    given = Given(model="mine", temperature=0.0, system="", stop=("Y",))
    assert with_role(given, role) == Given(
        profile="p", model="mine", system="", temperature=0.0, stop=("Y",)
    )
    assert with_role(given, None) is given
