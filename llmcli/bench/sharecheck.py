"""Each share of a level checked on its own records: what ``--workers`` and ``--cluster``
report per worker beside the pooled figures, which can hide one worker falling behind.

Pure: it reads the raw records a share sent back (:class:`~llmcli.bench.workers.
PortableRecord`) and builds the table from the plain dictionaries the results keep.

- requests: every record the share sent back, warm-up included; measured: without it;
- token frames: chunks carrying generated text;
- frames read together: token frames stamped as the one before them in their stream, a
  gap of zero: one read took both (the client came late, as its read lag says, or the
  server wrote them at once); their gap is lost to ITL;
- read lag p99 and max: each request's longest wait to read bytes the kernel had (the
  client's own self-check, see :mod:`llmcli.net.streamhttp`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmcli.bench.metrics import describe

if TYPE_CHECKING:
    from rich.table import Table

    from llmcli.bench.workers import PortableRecord

# Where a run keeps its shares' checks: ``run.environment[KEY]["levels"]``.
CLUSTER = "cluster"
PROCESSES = "worker_processes"


@dataclass(frozen=True, slots=True)
class ShareCheck:
    """One share of a level, checked on its own records (see the module docstring)."""

    requests: int
    measured: int
    token_frames: int
    frames_together: int
    read_lag_p99: float | None
    read_lag_max: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "measured": self.measured,
            "token_frames": self.token_frames,
            "frames_read_together": self.frames_together,
            "read_lag_p99_s": self.read_lag_p99,
            "read_lag_max_s": self.read_lag_max,
        }


def share_check(records: Sequence[PortableRecord]) -> ShareCheck:
    """A share's self-check, from the raw records it sent back."""
    frames = together = measured = 0
    lags: list[float] = []
    for record in records:
        if not record.fields.get("warmup"):
            measured += 1
        frames += len(record.chunks)
        together += sum(
            1 for a, b in zip(record.chunks, record.chunks[1:], strict=False) if b[0] == a[0]
        )
        lag = record.fields.get("read_lag")
        if lag is not None:
            lags.append(float(lag))
    stats = describe(lags)
    return ShareCheck(len(records), measured, frames, together, stats.p99, stats.max)


def share_tables(environment: Mapping[str, Any]) -> list[Table]:
    """The table of each level's shares, for a run that had workers (else none)."""
    from llmcli.ui.sanitize import neutralize

    tables = []
    cluster = environment.get(CLUSTER)
    if cluster:
        scheduler = neutralize(str(cluster.get("scheduler", "?")))
        tables.append(shares_table(f"cluster {scheduler}: each worker's share", cluster, True))
    processes = environment.get(PROCESSES)
    if processes:
        tables.append(shares_table("--workers: each process's share", processes, False))
    return tables


def shares_table(title: str, data: Mapping[str, Any], clocks: bool) -> Table:
    """Each level's shares by worker: what each sent and its self-check; ``clocks``: each
    worker's clock offset too (a cluster's; a machine's processes share one clock)."""
    from rich.table import Table
    from rich.text import Text

    from llmcli.ui.sanitize import neutralize

    table = Table(title=title, title_justify="left")
    heads = ["profile", "load", "worker", "host", "requests", "token frames",
             "read together", "read lag p99 ms", "read lag max ms"]  # fmt: skip
    if clocks:
        heads.append("clock offset ms")
    for head in heads:
        table.add_column(head, justify="left" if head in heads[:4] else "right")
    for level in data.get("levels", []):
        for n, worker in enumerate(level.get("workers", [])):
            cells: list[Text | str] = [
                Text(neutralize(str(level.get("profile", "")))) if n == 0 else "",
                str(level.get("load", "")) if n == 0 else "",
                Text(neutralize(str(worker.get("worker", "")))),
                Text(neutralize(str(worker.get("hostname", worker.get("host", ""))))),
                str(worker.get("requests", "")),
                str(worker.get("token_frames", "")),
                str(worker.get("frames_read_together", "")),
                _ms(worker.get("read_lag_p99_s")),
                _ms(worker.get("read_lag_max_s")),
            ]
            if clocks:
                offset = worker.get("clock_offset_s")
                cells.append(f"{_ms(offset)} ± {_ms(worker.get('clock_uncertainty_s'))}")
            table.add_row(*cells)
        table.add_section()
    return table


def _ms(value: Any) -> str:
    return f"{value * 1000:.2f}" if isinstance(value, int | float) else "-"
