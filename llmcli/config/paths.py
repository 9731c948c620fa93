"""Where llmcli keeps things on this machine: its data directory and its config directory.

Every module that needs one of them asks here; none derives one from another's file.
The environment is passed in (these functions never read ``os.environ``), so callers and
tests decide which one applies.

- data (history, models, logs, caches, run files): ``$LLMCLI_DATA_DIR``, else
  ``$XDG_DATA_HOME/llmcli``, else ``~/.local/share/llmcli`` on Linux;
- config (``profiles.toml``): ``$XDG_CONFIG_HOME/llmcli``, else ``~/.config/llmcli`` on
  Linux; ``$LLMCLI_CONFIG`` names the profiles file itself and wins over both.

A relative ``XDG_*`` value is ignored, as the XDG spec says. Elsewhere than Linux the
platform's own directories come from ``platformdirs``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "llmcli"
DATA_DIR_ENV = "LLMCLI_DATA_DIR"
CONFIG_FILE_ENV = "LLMCLI_CONFIG"
CONFIG_FILENAME = "profiles.toml"


def data_dir(env: Mapping[str, str]) -> Path:
    """llmcli's data directory: ``$LLMCLI_DATA_DIR``, else the platform data directory."""
    explicit = env.get(DATA_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform.startswith("linux"):
        # The XDG rule by hand: platformdirs costs tens of milliseconds to import.
        xdg = env.get("XDG_DATA_HOME", "").strip()
        if os.path.isabs(xdg):
            return Path(xdg) / APP_NAME
        return home_dir(env) / ".local" / "share" / APP_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir(env: Mapping[str, str]) -> Path:
    """llmcli's config directory (the platform one; ``$LLMCLI_CONFIG`` names a file)."""
    if sys.platform.startswith("linux"):
        # The XDG rule by hand: platformdirs costs tens of milliseconds to import.
        xdg = env.get("XDG_CONFIG_HOME", "").strip()
        base = Path(xdg) if os.path.isabs(xdg) else home_dir(env) / ".config"
        return base / APP_NAME
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_config_path(env: Mapping[str, str]) -> Path:
    """The user's profiles file: ``$LLMCLI_CONFIG``, else ``profiles.toml`` in ``config_dir``."""
    explicit = env.get(CONFIG_FILE_ENV, "")
    if explicit:
        return expand_home(explicit, env)
    return config_dir(env) / CONFIG_FILENAME


def home_dir(env: Mapping[str, str]) -> Path:
    """``$HOME`` from ``env``, else the account's home directory."""
    home = env.get("HOME", "")
    return Path(home) if home else Path.home()


def expand_home(path: str, env: Mapping[str, str]) -> Path:
    """``path`` with a leading ``~`` or ``~/`` replaced by ``env``'s home directory."""
    if path == "~" or path.startswith("~/"):
        return home_dir(env) / path[2:]
    return Path(path)
