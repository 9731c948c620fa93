"""Embeddings, each part usable without the command line and none of them printing:
``inputs`` (what is embedded), ``embedder`` (the requests, in batches), ``cache`` (vectors
kept in ``embeddings.db``), ``output`` (ndjson, JSON, CSV, ``.npy``), ``similarity``
(nearest-neighbour search) and ``vectors`` (float32 as little-endian bytes). ``run`` puts
them together for ``llmcli embed`` and is the one that writes: the vectors or the hits on
stdout (or a file), the counts on stderr."""
