"""Embeddings written out: ndjson, JSON, CSV and ``.npy``, as vectors finish.

ndjson/JSON/CSV lines and the ``.npy`` format, written here by hand because numpy is no
runtime dependency, and ``EmbeddingWriter``, which writes them as vectors finish (through
a callable it is given). Nothing here prints.
"""

from __future__ import annotations

import csv
import io
import math
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from llmcli.embeddings.inputs import Embedding
from llmcli.embeddings.vectors import to_le_bytes
from llmcli.errors import StreamError
from llmcli.ui.sanitize import dumps_json, neutralize

OutputKind = Literal["ndjson", "json", "csv", "npy"]


def _check_finite(item: Embedding) -> None:
    if not all(math.isfinite(x) for x in item.vector):
        raise StreamError(f"the server's vector for input {item.id!r} holds NaN or infinity")


def ndjson_line(item: Embedding) -> str:
    """``{"id": .., "text": .., "embedding": [..]}``, safe for a terminal, no newline.

    Numbers are the shortest repr of each float32 value as a double, as llama-server
    writes them: exact whether read back as float32 or as float64.
    """
    _check_finite(item)
    return dumps_json({"id": item.id, "text": item.text, "embedding": item.vector.tolist()})


def json_document(embeddings: Iterable[Embedding]) -> str:
    """One JSON array of the ndjson records."""
    return _json_array(ndjson_line(item) for item in embeddings)


def _json_array(records: Iterable[str]) -> str:
    return "[" + ",\n".join(records) + "]"


def csv_lines(embeddings: Sequence[Embedding]) -> Iterator[str]:
    """A header ``id,dim0..dimN-1``, then a row per input; ids made inert for a terminal."""
    yield csv_header(len(embeddings[0].vector) if embeddings else 0)
    for item in embeddings:
        yield csv_row(item)


def csv_header(dimensions: int) -> str:
    """``id,dim0,..,dimN-1`` and a newline."""
    return _csv_line(["id", *(f"dim{n}" for n in range(dimensions))])


def csv_row(item: Embedding) -> str:
    """One input's row and a newline: its id, made inert, then its numbers."""
    _check_finite(item)
    return _csv_line([neutralize(str(item.id)), *map(repr, item.vector)])


def _csv_line(fields: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def encode_npy(vectors: Sequence[array[float]]) -> bytes:
    """A ``.npy`` file (format 1.0) of a float32 matrix, one row per vector.

    Magic, version, a little-endian uint16 header length, then a Python-literal header
    padded with spaces to end in LF at a multiple of 64 bytes, then the data, row-major.
    """
    rows = len(vectors)
    dimensions = len(vectors[0]) if rows else 0
    if any(len(vector) != dimensions for vector in vectors):
        raise ValueError("every row of a matrix needs the same number of dimensions")
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dimensions}), }}"
    preamble = len(b"\x93NUMPY") + 2 + 2
    header += " " * (-(preamble + len(header) + 1) % 64) + "\n"
    out = bytearray(b"\x93NUMPY\x01\x00")
    out += struct.pack("<H", len(header))
    out += header.encode("latin-1")
    for vector in vectors:
        out += to_le_bytes(vector)
    return bytes(out)


class EmbeddingWriter:
    """Finished vectors to an output in input order, fed by ``Embedder.embed(on_prefix=)``.

    ndjson and csv are written a line at a time as vectors arrive, so a run that stops,
    however it stops, leaves every line before the stop. json and npy are one document
    each: their vectors are kept and written whole by :meth:`finish`, which a stopped run
    calls too, so the document holds the finished prefix and is still a valid document
    (a shorter array, fewer rows). Until something finishes ``write`` is never called,
    so a run that finishes nothing writes nothing at all. ``count``: the vectors written,
    or, for json and npy, the ones :meth:`finish` writes.
    """

    def __init__(self, kind: OutputKind, write: Callable[[bytes], None]) -> None:
        self.kind = kind
        self.write = write
        self.count = 0
        self.dimensions: int | None = None
        self._records: list[str] = []  # json: each vector's record
        self._vectors: list[array[float]] = []  # npy
        self._finished = False

    def add(self, embeddings: Sequence[Embedding]) -> None:
        """Take the next vectors in input order; a bad one stops the output before it."""
        lines: list[str] = []
        taken = 0
        try:
            for item in embeddings:
                self._check_size(item)
                if self.kind == "npy":
                    self._vectors.append(item.vector)
                elif self.kind == "json":
                    self._records.append(ndjson_line(item))
                elif self.kind == "csv":
                    if self.count == 0 and not lines:
                        lines.append(csv_header(len(item.vector)))
                    lines.append(csv_row(item))
                else:
                    lines.append(ndjson_line(item) + "\n")
                taken += 1
        finally:
            # What was taken before a bad vector is written, then the error goes on.
            if lines:
                self.write("".join(lines).encode("utf-8"))
            self.count += taken

    def finish(self) -> None:
        """Write the json or npy document of what was taken (once); nothing else to do."""
        if self._finished or not self.count:
            return
        self._finished = True
        if self.kind == "json":
            self.write((_json_array(self._records) + "\n").encode("utf-8"))
        elif self.kind == "npy":
            self.write(encode_npy(self._vectors))

    def _check_size(self, item: Embedding) -> None:
        if self.dimensions is None:
            self.dimensions = len(item.vector)
        elif len(item.vector) != self.dimensions:
            raise StreamError(
                "the server gave vectors of different sizes:"
                f" {sorted({self.dimensions, len(item.vector)})}"
            )
