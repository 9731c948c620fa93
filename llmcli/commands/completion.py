"""What Tab offers for option and argument values: profile names, model names, role names,
conversation ids.

The shell runs llmcli once per Tab press, so each function here reads only local files
(the profiles, the history database) and never the network. A broken profiles file or
history gives no candidates rather than an error: Tab must never print a traceback into
the user's command line. Commands, subcommands and option names are typer's own.
"""

from __future__ import annotations

from llmcli.errors import LlmcliError

# Enough for any one screen of candidates; the store lists the most recent first.
MAX_CONVERSATIONS = 200
_GLOB_CHARACTERS = frozenset("*?[")


def complete_profile_names(incomplete: str) -> list[str]:
    """Names of the shipped and the user's profiles starting with ``incomplete``."""
    from llmcli.config.profiles import load_profiles

    try:
        names = list(load_profiles().profiles)
    except LlmcliError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_model_names(incomplete: str) -> list[str]:
    """Models the profiles name (``model`` and the literal names in ``routes``).

    Asking each profile's server for its models would be complete but costs a network
    round trip per Tab press, and a server that is down would hang the shell.
    """
    from llmcli.config.profiles import load_profiles

    try:
        profiles = load_profiles().profiles.values()
    except LlmcliError:
        return []
    names: dict[str, None] = {}
    for profile in profiles:
        if profile.model:
            names[profile.model] = None
        for pattern, _target in profile.routes:
            if not _GLOB_CHARACTERS.intersection(pattern):
                names[pattern] = None
    return [name for name in names if name.startswith(incomplete)]


def complete_role_names(incomplete: str) -> list[str]:
    """Names of the built-in roles and the user's (``roles.toml``) starting with ``incomplete``."""
    from llmcli.config.roles import load_roles

    try:
        names = list(load_roles().roles)
    except LlmcliError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_conversation_ids(incomplete: str) -> list[str]:
    """Ids of the most recent conversations starting with ``incomplete``.

    Nothing when there is no history yet: opening the store would create it.
    """
    from llmcli.storage.store import Store, default_path

    path = default_path()
    if not path.is_file():
        return []
    try:
        with Store.open(path) as store:
            summaries = store.list(limit=MAX_CONVERSATIONS)
    except LlmcliError:
        return []
    return [s.id for s in summaries if s.id.startswith(incomplete)]
