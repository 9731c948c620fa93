"""Server info in bench results: ``/props`` and ``/v1/models`` cut down to safe fields,
fetched from the real llama-server and the mock, failures kept as notes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from rig import LlamaServer
from rig.profiles import make_profile

from llmcli.bench.run import fetch_server_info
from llmcli.bench.runner import BENCH_RETRY
from llmcli.bench.serverinfo import models_summary, props_summary
from llmcli.mock import MockConfig, MockServerThread
from llmcli.wire.client import Client

PROPS = {
    "build_info": "b1234-abc",
    "model_path": "/home/someone/private/models/qwen.gguf",
    "model_alias": "qwen",
    "total_slots": 4,
    "chat_template": "{{ secret template }}",
    "bos_token": "<s>",
    "ui_settings": {"x": 1},
    "default_generation_settings": {
        "n_ctx": 8192,
        "params": {"temperature": 0.8, "top_k": 40, "n_predict": -1, "dry_base": 1.75},
    },
}


def test_props_keep_only_the_listed_fields_and_the_model_file_name() -> None:
    assert props_summary(PROPS) == {
        "build_info": "b1234-abc",
        "model_alias": "qwen",
        "total_slots": 4,
        "model_file": "qwen.gguf",
        "n_ctx": 8192,
        "params": {"n_predict": -1, "temperature": 0.8, "top_k": 40},
    }
    assert props_summary(["not", "a", "mapping"]) == {}


def test_models_keep_id_owner_and_meta() -> None:
    payload = {
        "data": [
            {"id": "tiny", "owned_by": "llamacpp", "meta": {"n_vocab": 356, "n_ctx": 1024}},
            {"id": "big-pickle", "object": "model", "created": 1},
            {"no": "id"},
        ]
    }
    assert models_summary(payload) == [
        {"id": "tiny", "owned_by": "llamacpp", "meta": {"n_vocab": 356, "n_ctx": 1024}},
        {"id": "big-pickle"},
    ]
    assert models_summary({"models": []}) == []


def fetch(base_url: str, dialect: str, transport: Any = None) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        profile = make_profile(base_url, dialect=dialect, model=None)
        async with Client(profile, retry=BENCH_RETRY, transport=transport) as client:
            return await fetch_server_info(client, dialect)

    return asyncio.run(go())


def test_real_llama_server_props_and_models(llama_think: LlamaServer) -> None:
    info = fetch(llama_think.base_url, "llamacpp")
    assert "notes" not in info
    props = info["props"]
    assert props["model_file"].endswith(".gguf") and "/" not in props["model_file"]
    assert props["n_ctx"] > 0 and props["total_slots"] >= 1 and "build_info" in props
    assert "temperature" in props["params"] and "chat_template" not in props
    [model] = info["models"]
    assert model["id"] == "tiny" and model["meta"]["n_vocab"] > 0


def test_mock_llamacpp_and_zen() -> None:
    with MockServerThread(MockConfig(dialect="llamacpp")) as server:
        info = fetch(server.base_url, "llamacpp")
    assert info["props"]["model_file"].endswith(".gguf") and "notes" not in info
    with MockServerThread(MockConfig(dialect="zen")) as server:
        info = fetch(server.base_url, "zen")
    assert "props" not in info and "notes" not in info  # zen has no /props: not asked
    assert "big-pickle" in [m["id"] for m in info["models"]]


def test_failures_to_fetch_are_notes_not_errors() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/props":
            return httpx.Response(200, text="<html>not json</html>")
        return httpx.Response(500, json={"error": {"message": "down"}})

    info = fetch("http://backend.test/v1", "llamacpp", httpx.MockTransport(handler))
    assert seen == ["/props", "/v1/models"]
    assert "props" not in info and "models" not in info
    assert [note.split(":")[0] for note in info["notes"]] == ["/props", "/models"]
