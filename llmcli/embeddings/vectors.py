"""Float32 vectors as little-endian bytes: what base64 embeddings, the cache and ``.npy`` hold.

Vectors are ``array('f')``: float32, as servers compute them. llama-server's decimal
floats are float32 values printed in full, so both encodings give identical vectors.
"""

from __future__ import annotations

import sys
from array import array


def from_le_bytes(raw: bytes) -> array[float]:
    """A float32 vector from its little-endian bytes, on any machine."""
    vector = array("f")
    assert vector.itemsize == 4
    vector.frombytes(raw)
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def to_le_bytes(vector: array[float]) -> bytes:
    """A float32 vector's little-endian bytes, on any machine."""
    if sys.byteorder == "big":
        vector = array("f", vector)
        vector.byteswap()
    return vector.tobytes()
