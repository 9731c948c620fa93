"""The environment a user's tool runs with: this process's, without its secrets.

A tool's output goes to the model, so a tool that prints its environment (``env``, a
script that logs its settings, a crash report) would send every key the user has set to
the server. A tool therefore sees the environment minus every variable that is a secret
by this rule:

1. ``BACKEND_API_KEY`` and ``ZEN_API_KEY``, and every variable a profile names in
   ``api_key_env`` (whatever it is called);
2. any variable whose name looks like a secret: split at ``_`` (and any other
   non-alphanumeric character), upper-cased, a part is ``KEY``, ``KEYS``, ``APIKEY``,
   ``TOKEN``, ``TOKENS``, ``SECRET``, ``SECRETS``, ``PASSWORD``, ``PASSWD``, ``PASSPHRASE``,
   ``CREDENTIAL``, ``CREDENTIALS``, ``AUTH`` or ``COOKIE``; or the name contains
   ``PASSWORD``, ``PASSWD``, ``SECRET``, ``TOKEN``, ``APIKEY`` or ``CREDENTIAL`` anywhere
   (``PGPASSWORD``, ``GITHUB_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``OPENAI_API_KEY``,
   ``SSH_AUTH_SOCK``).

A tool that needs one of them asks for it by name in its own declaration
(``env = ["WEATHER_KEY"]``); only the names it lists pass, and only to that tool.
The built-in python tool is stricter still: it gets a short allow-list, never the rest.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile

ALWAYS_SECRET: Final = frozenset({"BACKEND_API_KEY", "ZEN_API_KEY"})
SECRET_PARTS: Final = frozenset(
    {
        "KEY",
        "KEYS",
        "APIKEY",
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "AUTH",
        "COOKIE",
    }
)
SECRET_INFIXES: Final = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL")
# What a POSIX shell accepts as a variable name: what a tool may ask for.
VARIABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART_SPLIT: Final = re.compile(r"[^A-Z0-9]+")


def is_secret_name(name: str, key_variables: Collection[str] = ()) -> bool:
    """Whether ``name`` is a secret by the module's rule; ``key_variables``: profiles' ones."""
    upper = name.upper()
    if name in ALWAYS_SECRET or name in key_variables:
        return True
    if any(part in SECRET_PARTS for part in _PART_SPLIT.split(upper)):
        return True
    return any(infix in upper for infix in SECRET_INFIXES)


def tool_environment(
    environ: Mapping[str, str],
    *,
    key_variables: Iterable[str] = (),
    passed: Iterable[str] = (),
) -> dict[str, str]:
    """``environ`` without its secrets, except the variables named in ``passed``."""
    keys = frozenset(key_variables)
    wanted = frozenset(passed)
    return {
        name: value
        for name, value in environ.items()
        if name in wanted or not is_secret_name(name, keys)
    }


def key_variables(profiles: Iterable[Profile]) -> frozenset[str]:
    """Every variable a profile reads its key from (``api_key_env``)."""
    return frozenset(profile.api_key_env for profile in profiles if profile.api_key_env)
