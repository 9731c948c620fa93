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


def share_sections(environment: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], bool]]:
    """Each pool the run had, as (title, its data, whether its workers have clocks of their
    own): a cluster's, or ``--workers``' processes (a machine's processes share one clock).
    The title is as it came (a scheduler's address is not this program's): escape it."""
    sections: list[tuple[str, Mapping[str, Any], bool]] = []
    cluster = environment.get(CLUSTER)
    if cluster:
        scheduler = str(cluster.get("scheduler", "?"))
        sections.append((f"cluster {scheduler}: each worker's share", cluster, True))
    processes = environment.get(PROCESSES)
    if processes:
        sections.append(("--workers: each process's share", processes, False))
    return sections


def share_rows(data: Mapping[str, Any], clocks: bool) -> tuple[list[str], list[list[str]]]:
    """The heads and rows of a pool's table: each level's shares by worker, what each sent
    and its self-check (``clocks``: its clock offset too). Profile and load are on a level's
    first row only; a level that ended early says so on a row of its own. Plain strings,
    as they came: the caller neutralises (terminal) or escapes (HTML) them."""
    heads = ["profile", "load", "worker", "host", "requests", "token frames",
             "read together", "read lag p99 ms", "read lag max ms"]  # fmt: skip
    if clocks:
        heads.append("clock offset ms")
    rows: list[list[str]] = []
    for level in data.get("levels", []):
        profile, load = str(level.get("profile", "")), str(level.get("load", ""))
        for n, worker in enumerate(level.get("workers", [])):
            cells = [
                profile if n == 0 else "",
                load if n == 0 else "",
                str(worker.get("worker", "")),
                str(worker.get("hostname", worker.get("host", ""))),
                str(worker.get("requests", "")),
                str(worker.get("token_frames", "")),
                str(worker.get("frames_read_together", "")),
                _ms(worker.get("read_lag_p99_s")),
                _ms(worker.get("read_lag_max_s")),
            ]
            if clocks:
                offset = worker.get("clock_offset_s")
                cells.append(f"{_ms(offset)} ± {_ms(worker.get('clock_uncertainty_s'))}")
            rows.append(cells)
        if level.get("incomplete"):  # why: in the notes, the results and the report's head
            shown = not level.get("workers")
            rows.append(
                [profile if shown else "", load if shown else "", INCOMPLETE,
                 *[""] * (len(heads) - 3)]
            )  # fmt: skip
    return heads, rows


# The row of a level cut short by a lost worker, under what the others sent back.
INCOMPLETE = "level incomplete"
# Columns a narrow terminal must not cut (see shares_table).
WHOLE = ("worker", "clock offset ms")


def share_tables(environment: Mapping[str, Any]) -> list[Table]:
    """The table of each level's shares, for a run that had workers (else none)."""
    return [
        shares_table(title, data, clocks) for title, data, clocks in share_sections(environment)
    ]


def shares_table(title: str, data: Mapping[str, Any], clocks: bool) -> Table:
    """A pool's :func:`share_rows` as a terminal table, every string neutralised."""
    from rich.table import Table
    from rich.text import Text

    from llmcli.ui.sanitize import neutralize

    heads, rows = share_rows(data, clocks)
    table = Table(title=neutralize(title), title_justify="left")
    for number, head in enumerate(heads):
        # A worker's address and its offset are kept whole on a narrow terminal (cut, they
        # say nothing): the other columns give way.
        whole = head in WHOLE
        table.add_column(
            head.replace(" ", "\n", 1) if whole else head,  # its head wraps, not its cells
            justify="left" if number < 4 else "right",
            no_wrap=whole,
        )
    for number, row in enumerate(rows):
        if row[0] and number > 0:  # a level's first row
            table.add_section()
        table.add_row(*(Text(neutralize(cell)) for cell in row))
    return table


def _ms(value: Any) -> str:
    """Seconds as milliseconds to 2 places; never "-0.00" (an offset a hair below zero)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    shown = f"{value * 1000:.2f}"
    return "0.00" if shown == "-0.00" else shown
