"""``llmcli bench``: throughput and latency of OpenAI-compatible backends, measured right.

Modules, one job each:

- ``metrics``: pure statistics from per-request timestamp records (TTFT, TTFA, ITL, TPOT,
  e2e, tokens/s, goodput, percentiles); every formula is written down in ``FORMULAS``.
- ``workload``: synthetic prompts, prompt files, load schedules, the run's settings.
- ``runner``: the one place with I/O: drives ``Client`` streams and timestamps events.
- ``report``: tables, JSON and CSV of finished runs; reading results back to compare them.
"""

from __future__ import annotations
