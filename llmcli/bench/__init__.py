"""``llmcli bench``: throughput and latency of OpenAI-compatible backends, measured right.

Modules, one job each:

- ``metrics``: pure statistics from per-request timestamp records (TTFT, TTFA, ITL, TPOT,
  e2e, tokens/s, goodput, percentiles); every formula is written down in ``FORMULAS``.
- ``workload``: synthetic prompts, prompt files, load schedules, the run's settings.
- ``runner``: the one place with I/O: drives ``Client`` streams and timestamps events;
  asks the server about itself and fits synthetic prompts with its tokenizer.
- ``serverinfo``: the safe subset of ``/props`` and ``/v1/models`` kept in results.
- ``progress``: how a running bench shows progress (live on a terminal, lines on a pipe).
- ``workers``: ``--workers N``: a level's streams over processes, records merged exactly.
- ``report``: tables, JSON and CSV of finished runs; reading results back to compare them.
"""

from __future__ import annotations
