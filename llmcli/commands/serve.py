"""``llmcli serve``: run a spawned profile's llama-server in the foreground, or detached.

Foreground, the server runs until Ctrl-C (or until it dies, which is an error with the
log's last lines). ``--detach`` leaves it running with a pid file; every other command on
that profile then uses it instead of starting its own, and ``llmcli serve --stop`` ends it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.errors import UsageError


@command_boundary
def serve(
    profile: Annotated[
        str | None,
        typer.Argument(metavar="PROFILE", help="A profile with spawn = true.", show_default=False),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Keep serving after this command returns.")
    ] = False,
    stop: Annotated[
        bool,
        typer.Option("--stop", help="Stop the detached server of PROFILE (all without one)."),
    ] = False,
) -> None:
    """Serve a spawned profile's llama-server; prints its base URL on stdout.

    \b
    Examples:
      llmcli serve demo
      llmcli serve -d demo && llmcli complete -p demo "Hi"
      llmcli serve --stop demo
    """
    from llmcli.local import spawn
    from llmcli.local.backend import resolve_profile
    from llmcli.ui.progress import StartProgress
    from llmcli.ui.terminal import Terminal

    if stop:
        _stop(profile)
        return
    chosen = resolve_profile(profile)
    if chosen.spawn is None:
        raise UsageError(
            f"profile {chosen.name!r} does not start a server; give one with spawn = true"
        )
    running = spawn.find_detached(chosen.name)
    if running is not None:
        raise UsageError(
            f"{chosen.name} is already served at {running.base_url} (pid {running.pid}); "
            f"stop it with 'llmcli serve --stop {chosen.name}'"
        )
    with spawn.sigterm_raises():
        progress = StartProgress(chosen.name, Terminal.detect())
        server = spawn.start_server(chosen, progress=progress.update, detached=detach)
        with server:  # from here on, every way out stops it (unless released)
            progress.clear()
            if detach:
                spawn.write_pid_file(chosen.name, server)
                report(f"serving {chosen.name} (pid {server.pid}, log {server.log_path})")
                print(server.base_url, flush=True)
                server.release()
                return
            try:
                report(
                    f"serving {chosen.name} (pid {server.pid}, log {server.log_path}); Ctrl-C stops"
                )
                print(server.base_url, flush=True)
                code = server.wait()
            except KeyboardInterrupt:
                report("stopping")
                return
    raise server.exit_error(code, "while serving")


def _stop(profile: str | None) -> None:
    from llmcli.local import spawn

    names = [profile] if profile else [record.profile for record in spawn.list_detached()]
    if not names:
        report("no detached servers")
        return
    for name in names:
        stopped = spawn.stop_detached(name)
        if stopped is None:
            raise UsageError(f"no detached server for {name}")
        report(f"stopped {name} (pid {stopped.pid})")
