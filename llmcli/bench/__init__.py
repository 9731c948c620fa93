"""``llmcli bench``: throughput and latency of OpenAI-compatible backends, measured right.

Modules, one job each:

- ``metrics``: pure statistics from per-request timestamp records (TTFT, TTFA, ITL, TPOT,
  e2e, tokens/s, goodput, percentiles); every formula is written down in ``FORMULAS``.
- ``workload``: synthetic prompts, prompt files, load schedules, the run's settings.
- ``records``: what a run records (levels, profiles, the run), plain data with no I/O.
- ``runner``: the one place with stream I/O: drives ``Client`` streams, timestamps events.
- ``run``: a whole run: each profile opened (the server asked about itself, synthetic
  prompts fitted with its tokenizer), each level driven in-process or in workers.
- ``serverinfo``: the safe subset of ``/props`` and ``/v1/models`` kept in results.
- ``session``: one ``llmcli bench`` as the command makes it: settings from the option
  text, the run under signals, then the results file and the summary.
- ``output``: where the bench draws (tables and JSON on stdout, notes and progress on
  stderr), from the one ``Terminal`` the command reads.
- ``progress``: how a running bench shows progress (live on a terminal, lines on a pipe).
- ``workers``: ``--workers N``: a level's streams over processes, records merged exactly.
- ``cluster``: ``--cluster dask|tcp://HOST:PORT``: the same shares as Dask tasks, with each
  worker's clock offset measured and a common start; Dask imported only here, lazily.
- ``sharecheck``: each share's self-check (requests, frames, frames read together, read lag).
- ``verdict``: for each pair of profiles, median ratios with bootstrap 95% intervals.
- ``sweep``: ``--sweep``, the bounded search for the load where the SLO stops holding.
- ``report``: tables, JSON and CSV of finished runs; the one reader of results files
  (``load_results``), for ``bench compare`` and ``bench check``.
- ``check``: a run's figures against the mock server's log of what it sent.
- ``html``, ``svg``: ``--html FILE``, one self-contained page with inline SVG charts.
- ``plot``: ``--plot FILE.png`` with matplotlib (the ``plot`` extra).
"""

from __future__ import annotations
