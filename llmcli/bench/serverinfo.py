"""What a benchmarked server says about itself, cut down to what a results file may keep.

Pure functions from the JSON of llama-server's ``/props`` and of ``/v1/models`` (either
dialect) to small dictionaries. Only fields that describe the server are kept, by an
explicit list: ``/props`` also carries the chat template, tokens and UI settings, and a
path may name a user's directories, so the model path is cut to its file name. A NaN or
Infinity a server sends (Python's json reads them) is kept as ``None``: a results file
is strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Sampling defaults worth knowing when reading a run back; the rest of params is noise.
PARAM_FIELDS: tuple[str, ...] = (
    "n_predict",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "ignore_eos",
    "reasoning_format",
    "chat_format",
)
# /v1/models meta of llama-server: sizes and context, all numbers.
META_FIELDS: tuple[str, ...] = (
    "vocab_type",
    "n_vocab",
    "n_ctx",
    "n_ctx_train",
    "n_embd",
    "n_params",
    "size",
    "ftype",
)


def props_summary(payload: Any) -> dict[str, Any]:
    """llama-server's ``/props``: build, model file name, context, slots, default params."""
    if not isinstance(payload, Mapping):
        return {}
    summary: dict[str, Any] = {}
    for key in ("build_info", "total_slots", "model_alias", "model_ftype"):
        if key in payload:
            summary[key] = payload[key]
    path = payload.get("model_path")
    if isinstance(path, str) and path:
        summary["model_file"] = path.replace("\\", "/").rsplit("/", 1)[-1]
    settings = payload.get("default_generation_settings")
    if isinstance(settings, Mapping):
        if "n_ctx" in settings:
            summary["n_ctx"] = settings["n_ctx"]
        params = settings.get("params")
        if isinstance(params, Mapping):
            summary["params"] = {k: params[k] for k in PARAM_FIELDS if k in params}
    if "n_ctx" not in summary and "n_ctx" in payload:
        summary["n_ctx"] = payload["n_ctx"]
    return {key: finite(value) for key, value in summary.items()}


def models_summary(payload: Any) -> list[dict[str, Any]]:
    """``/v1/models``: each model's id, owner, and llama-server's ``meta`` figures."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, list):
        return []
    models: list[dict[str, Any]] = []
    for entry in data:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            continue
        model: dict[str, Any] = {"id": entry["id"]}
        if isinstance(entry.get("owned_by"), str):
            model["owned_by"] = entry["owned_by"]
        meta = entry.get("meta")
        if isinstance(meta, Mapping):
            model["meta"] = {k: meta[k] for k in META_FIELDS if k in meta}
        models.append(model)
    return [{key: finite(value) for key, value in model.items()} for model in models]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float in it (NaN, Infinity) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
