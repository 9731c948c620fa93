"""A tiny random-weight llama GGUF that the real llama-server loads in milliseconds.

The weights are noise, so the text is meaningless; what matters is that the server runs its
real code paths (chat template, reasoning and tool-call parsers, grammars, streaming,
usage, timings) at thousands of tokens per second on a CPU. Tests steer the output with a
request `grammar` or an assistant prefill rather than relying on what the weights say.

The vocabulary is SPM ("llama") with one token per printable ASCII character and the 256
byte-fallback tokens, so any text round-trips through the tokenizer.

``quant`` writes the weight matrices quantized (``Q4_0``), as real GGUF files are: the
server then takes its quantized code paths, among them repacking the weights for the
CPU's fastest kernels at load (AMX on recent Intel Xeons), which an F32 model never
reaches. ``QUANTIZED_SHAPE`` is the smallest shape those kernels accept (rows of 256).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

ARCH = "llama"
SPACE = "\u2581"  # SentencePiece's stand-in for " "


@dataclass(frozen=True, slots=True)
class TinyShape:
    """Hyper-parameters of the generated model (defaults give a ~0.5 MB file)."""

    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_ff: int = 128
    n_ctx_train: int = 4096
    rms_eps: float = 1e-5


# About 1.1 MB in Q4_0: embedding 256 and feed-forward 512 are whole blocks for every
# repacked kernel llama.cpp has (the AMX and AVX interleavings want multiples of 32 to 256).
QUANTIZED_SHAPE = TinyShape(n_embd=256, n_ff=512)


@dataclass(frozen=True, slots=True)
class TinyVocab:
    """Token strings and types, with the ids the GGUF metadata points at."""

    tokens: list[str]
    types: list[int]
    unk_id: int
    bos_id: int
    eos_id: int
    im_start_id: int
    im_end_id: int


def build_vocab() -> TinyVocab:
    """Build the SPM vocabulary: specials, ChatML controls, byte tokens, printable ASCII."""
    tokens: list[str] = []
    types: list[int] = []

    def add(text: str, kind: gguf.TokenType) -> int:
        tokens.append(text)
        types.append(int(kind))
        return len(tokens) - 1

    unk = add("<unk>", gguf.TokenType.UNKNOWN)
    bos = add("<s>", gguf.TokenType.CONTROL)
    eos = add("</s>", gguf.TokenType.CONTROL)
    im_start = add("<|im_start|>", gguf.TokenType.CONTROL)
    im_end = add("<|im_end|>", gguf.TokenType.CONTROL)
    for byte in range(256):
        add(f"<0x{byte:02X}>", gguf.TokenType.BYTE)
    for code in range(0x20, 0x7F):
        add(SPACE if code == 0x20 else chr(code), gguf.TokenType.NORMAL)

    if len(set(tokens)) != len(tokens):
        raise AssertionError("tiny vocab has duplicate token strings")
    return TinyVocab(tokens, types, unk, bos, eos, im_start, im_end)


def write_tiny_model(
    path: Path,
    *,
    chat_template: str,
    seed: int = 0,
    shape: TinyShape | None = None,
    name: str = "tiny-random-llama",
    quant: gguf.GGMLQuantizationType | None = None,
) -> Path:
    """Write a random-weight llama GGUF with `chat_template` embedded; return `path`.

    The same `seed` gives byte-identical weights, so a failing test replays exactly.
    With `quant`, every weight matrix is stored in that type (norms stay F32).
    """
    shape = shape or (QUANTIZED_SHAPE if quant is not None else TinyShape())
    vocab = build_vocab()
    rng = np.random.default_rng(seed)
    head_dim = shape.n_embd // shape.n_head

    writer = gguf.GGUFWriter(path, ARCH)
    writer.add_name(name)
    file_type = gguf.LlamaFileType.ALL_F32
    if quant is not None:
        file_type = gguf.LlamaFileType[f"MOSTLY_{quant.name}"]
    writer.add_file_type(file_type)
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(shape.rms_eps)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab.tokens)
    # SPM merges greedily by score; all tokens are single characters, so equal scores do.
    writer.add_token_scores([0.0] * len(vocab.tokens))
    writer.add_token_types(vocab.types)
    writer.add_unk_token_id(vocab.unk_id)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.im_end_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    # With a space prefix the tool-call grammar cannot start ("Failed to initialize samplers").
    writer.add_add_space_prefix(False)
    writer.add_chat_template(chat_template)

    def weight(*numpy_shape: int) -> np.ndarray:
        return (rng.standard_normal(numpy_shape) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def add_matrix(tensor: str, rows: int, cols: int) -> None:
        data = weight(rows, cols)
        if quant is None:
            writer.add_tensor(tensor, data)
        else:
            writer.add_tensor(tensor, gguf.quants.quantize(data, quant), raw_dtype=quant)

    n_vocab = len(vocab.tokens)
    # numpy shapes are (rows, cols); GGUF stores them reversed as ggml's (ne0, ne1).
    add_matrix("token_embd.weight", n_vocab, shape.n_embd)
    for i in range(shape.n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(shape.n_embd))
        add_matrix(f"blk.{i}.attn_q.weight", shape.n_embd, shape.n_embd)
        add_matrix(f"blk.{i}.attn_k.weight", shape.n_embd, shape.n_embd)
        add_matrix(f"blk.{i}.attn_v.weight", shape.n_embd, shape.n_embd)
        add_matrix(f"blk.{i}.attn_output.weight", shape.n_embd, shape.n_embd)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(shape.n_embd))
        add_matrix(f"blk.{i}.ffn_gate.weight", shape.n_ff, shape.n_embd)
        add_matrix(f"blk.{i}.ffn_up.weight", shape.n_ff, shape.n_embd)
        add_matrix(f"blk.{i}.ffn_down.weight", shape.n_embd, shape.n_ff)
    writer.add_tensor("output_norm.weight", ones(shape.n_embd))
    add_matrix("output.weight", n_vocab, shape.n_embd)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
