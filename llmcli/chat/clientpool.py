"""One ``Client`` per profile for as long as a chat runs, so its answers share connections.

Each ``Client`` is a connection pool of its own: an answer asked on a fresh one pays a TCP
(and TLS) handshake before its first token. A chat keeps one ``ClientPool`` instead, and
closes every client in it when the chat ends, however it ends. (A server may still close
a connection after an answer, as llama-server does after every stream; the client then
opens the next one itself.)

Clients are keyed by the profile value, not its name: the client is built from every
field of it (URL, key, headers, timeouts), so a profile of the same name that now points
elsewhere (a server spawned anew, another ``BACKEND_URL``) must not get the old client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from llmcli.config.profiles import Profile
from llmcli.wire.client import Client


class ClientPool:
    """The clients a chat has opened, one per profile, until :meth:`aclose`."""

    def __init__(self, make: Callable[[Profile], Client] = Client) -> None:
        self._make = make
        self._clients: dict[Profile, Client] = {}
        self._closed = False

    def get(self, profile: Profile) -> Client:
        """The client for ``profile``: the one made before, else a new one kept for later."""
        if self._closed:
            # A bug, not a user's mistake: nothing may ask once the chat has ended.
            raise RuntimeError("the chat's clients are closed")
        client = self._clients.get(profile)
        if client is None:
            client = self._clients[profile] = self._make(profile)
        return client

    async def aclose(self) -> None:
        """Close every client, each even if closing another fails; safe to call twice."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        async with contextlib.AsyncExitStack() as stack:
            for client in clients:
                stack.push_async_callback(client.aclose)

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
