"""Pins how llama-server treats a kept-alive connection, read off raw sockets.

``chat`` keeps one client per profile so that an answer can reuse the last answer's
connection. llama-server's streamed answers cannot be reused: though each response says
``Keep-Alive: timeout=5, max=100``, the server closes the connection once a stream has
ended, so every streamed answer to it opens a new connection (on loopback, cheap). Its
other responses (non-streamed answers, /models, /props, slot actions) keep it open. If a
new build changes this, these tests say so; then a chat test can show two answers to
llama-server on one connection, as ``test_cli_chat.py`` shows for a zen-style server.
"""

from __future__ import annotations

import json
import socket

from rig import LlamaServer

BODY_END = b"0\r\n\r\n"


def chat_request(*, stream: bool) -> bytes:
    body = json.dumps(
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": stream}
    ).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket) -> bytes:
    """One whole response (chunked or with a length), or what came before the server closed."""
    data = b""
    while True:
        head, ended, body = data.partition(b"\r\n\r\n")
        if ended:
            fields = [line.split(":", 1) for line in head.decode("latin-1").split("\r\n")[1:]]
            length = [int(value) for name, value in fields if name.lower() == "content-length"]
            if length and len(body) >= length[0]:
                return data
            if not length and body.endswith(BODY_END):
                return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def second_answer_on_one_connection(server: LlamaServer, *, stream: bool) -> bytes:
    """Send a request, read its whole response, send another on the same socket: the
    second response, or ``b""`` when the server closed the connection in between."""
    assert server.port is not None
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(chat_request(stream=stream))
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        assert b"keep-alive: timeout=5" in first.lower()  # what it says it will do
        try:
            sock.sendall(chat_request(stream=stream))
            return read_response(sock)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_a_streamed_answer_ends_with_the_server_closing_the_connection(
    llama_think: LlamaServer,
) -> None:
    assert second_answer_on_one_connection(llama_think, stream=True) == b""


def test_a_whole_answer_leaves_the_connection_open_for_the_next(
    llama_think: LlamaServer,
) -> None:
    second = second_answer_on_one_connection(llama_think, stream=False)
    assert second.startswith(b"HTTP/1.1 200"), second[:200]
