"""``--cluster``: a level's shares run as Dask tasks on a cluster's workers, merged exactly.

The engine is ``--workers``' own (:mod:`llmcli.bench.workers`): :func:`plan` splits the
level (closed loop: the streams; open loop: the one arrival schedule, dealt out in turn),
each share runs :func:`~llmcli.bench.workers.run_share` in a Dask worker, and the raw
records come back and are merged by :func:`~llmcli.bench.workers.merge`. Statistics are
computed from the merged samples, never from the workers' percentiles.

``--cluster dask`` starts a local cluster (worker processes, one thread each) with every
socket on 127.0.0.1, closed when the run ends however it ends; ``--cluster
tcp://HOST:PORT`` uses a running scheduler and its workers (llmcli must be installed on
them), and ``tls://HOST:PORT`` the same over TLS, with the CA and client certificate of
Dask's own configuration (:func:`tls_security`). Dask is an optional extra, imported only
here and only when a run asks for it.

Clocks. Workers may be other machines, whose wall clocks are not the client's. Before
each level the client measures each worker's offset: it reads the worker's ``time.time``
through the cluster several times and keeps the round trip with the shortest time
(``t0`` sent, ``t1`` back, ``w`` the worker's reading): offset = ``w - (t0 + t1) / 2``,
known to within half that round trip (the reading was taken somewhere inside it). A share
starts at the client's chosen instant plus its worker's offset, and each record's send
(the one time that crosses hosts, see workers.py) is moved back onto the client's clock
by subtracting it before the merge. Durations never cross hosts and need no correction.
An open-loop level's shares say when their warm-up is done (a Dask queue); the client
then picks one start on its own clock and publishes it (a Dask variable), and each worker
starts at it plus its own offset.

Self-check. Each worker's share is checked on its own records
(:mod:`llmcli.bench.sharecheck`, as ``--workers`` checks each process's): its requests,
token frames, frames read together and read lag. These and the clock offsets go into
the results, per level and worker.

Stopping. Ctrl-C, SIGTERM or SIGHUP reach the client; a local cluster's worker
processes ignore them (:func:`dask_setup`), so a terminal's Ctrl-C to the whole process
group does not kill a worker holding records. The client stops a level by setting a Dask
event that a thread beside each share waits on; the share is cancelled, sends back what
it has, and the client merges it before the ending goes on. A worker that leaves the
cluster mid-level ends the run with one error line (Dask would wait for it for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing.resource_tracker
import os
import re
import signal
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmcli import __version__
from llmcli.bench.metrics import RequestEnd
from llmcli.bench.sharecheck import share_check
from llmcli.bench.workers import (
    INTERRUPT_WAIT,
    PARENTS_SIGNALS,
    START_MARGIN,
    START_WAIT,
    ClockPair,
    LevelLost,
    PortableRecord,
    ShareResult,
    WallClockTracker,
    WorkerTask,
    merge,
    run_share,
    signals_blocked,
)
from llmcli.bench.workload import MAX_WORKERS
from llmcli.errors import ConnectError, UsageError, cap_text
from llmcli.net import eventloop

if TYPE_CHECKING:
    from llmcli.bench.metrics import RequestRecord
    from llmcli.bench.progress import Tracker

LOCAL = "dask"
INSTALL_HINT = "pip install 'llmcli[cluster]'"
# How long the client waits for a scheduler to answer, and for its workers to join.
CONNECT_TIMEOUT = 10.0
OFFSET_ROUNDS = 8  # round trips a worker's clock offset is measured over (the best is kept)
WATCH_PERIOD = 0.2  # s: how often a share's watcher looks for a stop and sends progress
LOST_CHECK = 0.5  # s: how often the client checks its workers are still in the cluster
# s: longest wait for one reading of a worker's clock. A live worker answers in
# milliseconds; a dead one would hold the client for Dask's connect timeout (30 s).
CLOCK_WAIT = 3.0
# Dask's loggers with levels of their own (distributed.yaml), quieted while a pool is open.
DASK_LOGGERS = ("distributed", "distributed.client", "distributed.gc")
_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
# Dask's settings a tls:// client needs (distributed.Security reads them from its config:
# distributed.comm.tls.ca-file, .client.cert, .client.key), and the environment variables
# that set them. The key may instead be in the certificate's file, as Dask allows.
TLS_CA = "DASK_DISTRIBUTED__COMM__TLS__CA_FILE"
TLS_CERT = "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"
TLS_KEY = "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"


def parse_cluster(text: str) -> str:
    """``dask``, ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (with Dask's TLS settings),
    checked, with Dask there to use it (before any server is started or asked); anything
    else is one ``UsageError``."""
    value = text.strip()
    if value != LOCAL:
        match = _ADDRESS.fullmatch(value)
        if match is None or not 0 < int(match.group(3)) < 65536:
            raise UsageError(
                f"--cluster {text!r}: use dask (a local cluster) or tcp://HOST:PORT (a running"
                " Dask scheduler; tls://HOST:PORT over TLS)"
            )
    require_dask()
    if value.startswith("tls://"):
        tls_security(value)
    return value


def tls_security(address: str) -> Any:
    """A ``distributed.Security`` for a ``tls://`` scheduler, from Dask's configuration
    (its files, or the ``DASK_DISTRIBUTED__COMM__TLS__…`` environment variables), with
    its files read now: one ``UsageError`` when a setting is missing or a file cannot be
    used. Encryption is required: none of the client's connections may be plain TCP."""
    distributed = require_dask()
    security = distributed.Security(require_encryption=True)
    if not (security.tls_ca_file and security.tls_client_cert):
        raise UsageError(
            f"--cluster {address}: Dask's TLS settings are missing: set {TLS_CA}, {TLS_CERT}"
            f" and {TLS_KEY} (PEM files: the cluster's CA, this client's certificate, its key)"
        )
    try:
        security.get_connection_args("client")  # loads the CA, certificate and key
    except (OSError, ValueError) as error:
        # The error names a file or an OpenSSL reason, never a key's contents.
        raise UsageError(
            f"--cluster {address}: Dask's TLS files cannot be used"
            f" ({cap_text(str(error), 160)}): check {TLS_CA}, {TLS_CERT} and {TLS_KEY}"
        ) from None
    return security


_SSL_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\] ([^(\n]+)")


def handshake_failure(error: BaseException) -> str | None:
    """OpenSSL's reason when ``error`` (a failed connect) comes from a TLS handshake, else
    ``None``. Dask wraps it: as the cause when this side refused the scheduler's
    certificate, only in its message when the scheduler refused this side's."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        match = _SSL_REASON.search(str(found))
        if match is not None:
            return match.group(1).strip()
        if isinstance(found, ssl.SSLError):
            return str(found.reason or found)
        found = found.__cause__ or found.__context__
    return None


def require_dask() -> Any:
    """The ``distributed`` package, or one line saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--cluster needs Dask, an optional extra: {INSTALL_HINT}") from None
    return distributed


def default_local_workers() -> int:
    """Worker processes of ``--cluster dask`` without ``--workers``: one a core."""
    return max(2, min(os.cpu_count() or 2, MAX_WORKERS))


# -- clocks (pure) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """A worker's wall clock against the client's: worker = client + ``offset`` (s),
    known to within ``uncertainty`` (half the round trip it was measured over)."""

    worker: str
    host: str
    offset: float
    uncertainty: float
    rtt: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "host": self.host,
            "clock_offset_s": round(self.offset, 6),
            "clock_uncertainty_s": round(self.uncertainty, 6),
            "clock_rtt_s": round(self.rtt, 6),
        }


def best_offset(
    worker: str, host: str, samples: Sequence[tuple[float, float, float]]
) -> ClockOffset:
    """The offset from the round trip ``(sent, worker's reading, back)`` with the smallest
    time: offset = reading - midpoint, uncertainty = round trip / 2."""
    if not samples:
        raise ValueError("no round trips to measure a clock offset from")
    sent, reading, back = min(samples, key=lambda s: s[2] - s[0])
    rtt = back - sent
    return ClockOffset(worker, host, reading - (sent + back) / 2, rtt / 2, rtt)


def on_client_clock(part: Sequence[PortableRecord], offset: float) -> list[PortableRecord]:
    """A worker's records with their sends moved from its wall clock to the client's."""
    return [dataclasses.replace(record, sent_wall=record.sent_wall - offset) for record in part]


# -- the client's side ---------------------------------------------------------------------


class ClusterPool:
    """A Dask cluster for a whole run; a level is sent to its workers with :meth:`run`.

    An async context manager: the cluster is reached (or started) on entry and let go
    (or closed) on exit, the blocking Dask calls made on threads of their own.
    ``description`` is what the results keep: the scheduler, the workers and, level by
    level, each worker's clock offset and self-check.
    """

    def __init__(self, address: str, workers: int = 1) -> None:
        self.address = address
        self.requested = workers
        self.workers = 0
        self._distributed: Any = None
        self._cluster: Any = None
        self._client: Any = None
        self._addresses: list[str] = []
        self._hostnames: dict[str, str] = {}
        self._id = uuid.uuid4().hex[:12]
        self._tag = 0
        self.description: dict[str, Any] = {}
        self.last_level: list[dict[str, Any]] = []
        self._log_levels: dict[str, int] = {}

    async def __aenter__(self) -> ClusterPool:
        opening = asyncio.ensure_future(asyncio.to_thread(self._open))
        try:
            await asyncio.shield(opening)
        except BaseException:
            # Ended while the cluster starts: let it finish starting, then close it.
            with contextlib.suppress(BaseException):
                await opening
            await asyncio.to_thread(self._close)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(asyncio.to_thread(self._close))

    def _open(self) -> None:
        distributed = self._distributed = require_dask()
        local = self.address == LOCAL
        # Dask's own log lines in this process (a lost scheduler's reconnect attempts, a
        # closed comm) are not llmcli's output: what went wrong is one error line of ours.
        for name in DASK_LOGGERS:
            logger = logging.getLogger(name)
            self._log_levels[name] = logger.level
            logger.setLevel(logging.CRITICAL)
        wanted = self.requested if self.requested > 1 else None
        # The client's endings are its own: blocked in the threads the cluster starts here
        # (Python runs the handlers in the main thread) and in the worker processes they
        # spawn, which then ignore them (see dask_setup), so a Ctrl-C to the process group
        # never kills a worker, starting or mid-level.
        if local:
            # multiprocessing's resource tracker is started here, before the block: the
            # thread that starts it has SIGINT and SIGTERM unblocked after, and were that
            # the thread spawning the workers, they would start without the block.
            multiprocessing.resource_tracker.ensure_running()
        tls = self.address.startswith("tls://")
        with signals_blocked(PARENTS_SIGNALS):
            try:
                if local:
                    self._cluster = distributed.LocalCluster(
                        n_workers=wanted or default_local_workers(),
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        worker_dashboard_address=None,
                        # The scheduler's HTTP endpoint (/health) starts whatever the
                        # dashboard; on 8787 it would clash with a second run (a warning)
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR,
                        preload=[__name__],  # each worker process runs dask_setup
                    )
                self._client = distributed.Client(
                    self._cluster if local else self.address,
                    timeout=CONNECT_TIMEOUT,
                    security=tls_security(self.address) if tls else None,
                )
            except OSError as error:
                self._close()
                refused = handshake_failure(error)
                if refused is not None:
                    raise ConnectError(
                        f"--cluster {self.address}: the TLS handshake with the scheduler failed"
                        f" ({cap_text(refused, 120)}): check that it listens for TLS (dask"
                        f" scheduler --protocol tls), that its certificate is signed by the CA"
                        f" in {TLS_CA}, and this client's ({TLS_CERT}) by a CA it trusts"
                    ) from error
                raise ConnectError(
                    f"--cluster {self.address}: no Dask scheduler answered within"
                    f" {CONNECT_TIMEOUT:g} s; start one (dask scheduler) or check the address"
                ) from error
        limit = START_WAIT if local else CONNECT_TIMEOUT
        try:
            self._client.wait_for_workers(wanted or 1, timeout=limit)
        except (OSError, TimeoutError):
            self._close()
            hint = "" if local else f"; start them (dask worker {self.address})"
            raise ConnectError(
                f"--cluster {self.address}: fewer than {wanted or 1} workers joined within"
                f" {limit:g} s{hint}"
            ) from None
        present = sorted(self._client.nthreads())  # every worker (scheduler_info: 5 at most)
        self._addresses = present[:wanted] if wanted else present[:MAX_WORKERS]
        self.workers = len(self._addresses)
        self._hostnames = self._worker_hosts()
        self.description = {
            "scheduler": self._client.scheduler.address,
            "local": local,
            "dask": distributed.__version__,
            "workers": [
                {"worker": a, "hostname": self._hostnames.get(a, "?")} for a in self._addresses
            ],
            "levels": [],
        }

    def _worker_hosts(self) -> dict[str, str]:
        """Each worker's host name, asked through llmcli itself: a worker without llmcli
        (or with another version) is refused here, before a level, not lost in one (a Dask
        worker that cannot unpickle a task closes)."""
        answers = self._client.run(worker_facts, workers=self._addresses, on_error="return")
        hosts = {}
        for address in self._addresses:
            answer = answers.get(address)
            if not isinstance(answer, tuple):
                self._close()
                raise UsageError(
                    f"--cluster {self.address}: worker {address} cannot run llmcli"
                    f" ({cap_text(repr(answer), 120)}); install llmcli {__version__} there"
                )
            host, version = answer
            if version != __version__:
                self._close()
                raise UsageError(
                    f"--cluster {self.address}: worker {address} has llmcli {version}, this"
                    f" is {__version__}; install the same version on every worker"
                )
            hosts[address] = host
        return hosts

    def _close(self) -> None:
        for part in (self._client, self._cluster):
            if part is not None:
                with contextlib.suppress(Exception):  # closing: nothing left to save
                    part.close()
        self._client = self._cluster = None
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)

    def _measure_offsets(self) -> dict[str, ClockOffset]:
        offsets = {}
        present = set(self._client.nthreads())  # a worker the scheduler saw go: named now
        for address in self._addresses:
            if address not in present:
                raise LevelLost(
                    f"--cluster: worker {address} left the cluster before the level",
                    "run again (a restarted worker has a new address)",
                )
            samples = []
            for _ in range(OFFSET_ROUNDS):
                sent = time.time()
                try:
                    # callback_timeout is the client's own bound (Client.sync takes it), not
                    # an argument of time.time
                    answer = self._client.run(
                        time.time, workers=[address], on_error="return",
                        callback_timeout=CLOCK_WAIT,
                    )  # fmt: skip
                except (OSError, KeyError):  # asyncio's TimeoutError is an OSError
                    answer = {}
                reading = answer.get(address)
                if not isinstance(reading, float):
                    raise LevelLost(
                        f"--cluster: worker {address} did not answer within {CLOCK_WAIT:g} s"
                        " before the level (hung, or gone?)",
                        "run again (a restarted worker has a new address)",
                    )
                samples.append((sent, reading, time.time()))
            host = address.split("://", 1)[-1].rsplit(":", 1)[0]
            offsets[address] = best_offset(address, host, samples)
        return offsets

    async def run(
        self,
        tasks: Sequence[WorkerTask],
        sink: list[RequestRecord],
        tracker: Tracker | None = None,
        send_offsets: list[float] | None = None,
    ) -> None:
        """Run the tasks on the workers at once; their records merged into ``sink`` on this
        process's clock. A Ctrl-C stops every share and keeps what they sent back."""
        self._tag += 1
        channel = f"llmcli-bench-{self._id}-{self._tag}"
        clocks = await asyncio.to_thread(self._measure_offsets)
        handshake = any(task.schedule is not None for task in tasks)
        chosen = list(zip(self._addresses, tasks, strict=False))
        futures = [
            self._client.submit(
                run_cluster_task,
                dataclasses.replace(
                    task, tag=self._tag, start_wall=task.start_wall + clocks[address].offset
                ),
                channel,
                clocks[address].offset,
                handshake,
                workers=[address],
                allow_other_workers=False,
                pure=False,
                key=f"{channel}-{number}",
            )
            for number, (address, task) in enumerate(chosen)
        ]
        done = threading.Event()
        helpers = [asyncio.to_thread(self._forward, channel, clocks, tracker, done)]
        if handshake:
            helpers.append(asyncio.to_thread(self._start_together, channel, len(futures), done))
        helping = asyncio.gather(*helpers)
        index_from = len(sink)
        try:
            lost = await asyncio.to_thread(self._wait, chosen, futures, done, None)
            failed = next((f for f in futures if f.status == "error"), None)
            if failed is not None:
                raise LevelLost(
                    "--cluster: a worker's share failed during the level:"
                    f" {cap_text(repr(failed.exception()), 300)}",
                    "is llmcli installed on every worker?",
                )
            if lost is not None:
                raise LevelLost(
                    f"--cluster: worker {lost} left the cluster during the level, with the"
                    " requests it had made",
                    "run again (a restarted worker has a new address)",
                )
            unfinished = sum(1 for future in futures if future.status != "finished")
            if unfinished:  # cancelled by Dask: the client lost its scheduler
                raise LevelLost(
                    f"--cluster: the scheduler {self.description.get('scheduler', '?')} went"
                    f" away during the level; {unfinished} of {len(futures)} shares never came"
                    " back",
                    "run again once it is back",
                )
        except BaseException:  # Ctrl-C, or a share failed (the others may wait to start)
            self._stop(channel)
            self._wait(chosen, futures, threading.Event(), INTERRUPT_WAIT)
            raise
        finally:
            done.set()
            with contextlib.suppress(BaseException):
                await asyncio.shield(helping)
            results: list[tuple[str, ShareResult]] = [
                (address, future.result())
                for (address, _), future in zip(chosen, futures, strict=True)
                if future.status == "finished"
            ]
            parts = [on_client_clock(result[0], clocks[a].offset) for a, result in results]
            sink.extend(merge(parts, ClockPair.now(), index_from))
            if send_offsets is not None:  # each counted from the one common start
                send_offsets.extend(sorted(o for _, result in results for o in result[3]))
            self.last_level = [
                {
                    **clocks[address].as_dict(),
                    "hostname": self._hostnames.get(address, "?"),
                    **share_check(result[0]).as_dict(),
                }
                for address, result in results
            ]
            for future in futures:
                future.release()
            self._release(channel, handshake)

    def _wait(
        self,
        chosen: Sequence[tuple[str, WorkerTask]],
        futures: Sequence[Any],
        done: threading.Event,
        limit: float | None,
    ) -> str | None:
        """Until every future is done, ``done`` is set, or ``limit`` seconds pass; the
        address of a worker that left the cluster with its share unfinished, if one did.

        A failed share ends the wait (the others may wait for it at an open loop's start),
        and so does a lost worker: Dask would hold its share, pinned to that address, for
        ever (a nanny restarts a worker under a new one).
        """
        deadline = None if limit is None else time.monotonic() + limit
        checked = time.monotonic()
        while not done.is_set() and not all(f.done() for f in futures):
            if any(f.status == "error" for f in futures):
                return None
            now = time.monotonic()
            if deadline is not None and now > deadline:
                return None
            if now - checked > LOST_CHECK:
                checked = now
                try:
                    present = set(self._client.nthreads())
                except OSError:  # no scheduler to ask: Dask cancels the futures, see run
                    continue
                for (address, _), future in zip(chosen, futures, strict=False):
                    if not future.done() and address not in present:
                        return address
            time.sleep(0.02)
        return None

    def _release(self, channel: str, handshake: bool) -> None:
        """The level's named start and stop off the scheduler, which would keep them set.
        Its two queues stay there, empty (closing them early could drop a last batch)."""
        distributed = self._distributed
        with contextlib.suppress(Exception):  # tidying only
            distributed.Event(f"{channel}-stop", client=self._client).clear()
            if handshake:
                distributed.Variable(f"{channel}-start", client=self._client).delete()

    def _stop(self, channel: str) -> None:
        distributed = self._distributed
        with contextlib.suppress(Exception):  # a cluster already gone has nothing to stop
            distributed.Event(f"{channel}-stop", client=self._client).set()
            distributed.Variable(f"{channel}-start", client=self._client).set(-1.0)

    def _forward(
        self,
        channel: str,
        clocks: Mapping[str, ClockOffset],
        tracker: Tracker | None,
        done: threading.Event,
    ) -> None:
        """Thread: the workers' batches of request ends to the tracker, on this clock."""
        queue = self._distributed.Queue(f"{channel}-progress", client=self._client)
        # Polled, not waited on: a get that times out is an error in the scheduler's log.
        # Once more after the level: each share sends its last batch before it returns.
        while True:
            last = done.wait(WATCH_PERIOD)
            for address, ends in queue.get(batch=True):
                if tracker is None or address not in clocks:
                    continue
                for end in ends:
                    tracker.request_done(end.on_clock(-clocks[address].offset))
            if last:
                return

    def _start_together(self, channel: str, count: int, done: threading.Event) -> None:
        """Thread: once every share's warm-up is done, one start instant on this clock."""
        distributed = self._distributed
        ready = distributed.Queue(f"{channel}-ready", client=self._client)
        waiting = count
        while waiting > 0 and not done.wait(0.01):
            waiting -= len(ready.get(batch=True))
        if waiting <= 0:
            start = distributed.Variable(f"{channel}-start", client=self._client)
            start.set(time.time() + START_MARGIN)


# -- in a Dask worker ----------------------------------------------------------------------


def worker_facts() -> tuple[str, str]:
    """In a worker (by reference: it runs only where llmcli is installed): its host name
    and llmcli's version."""
    return socket.gethostname(), __version__


def dask_setup(worker: Any) -> None:
    """Run by each worker process of ``--cluster dask`` as it starts (a Dask preload).

    A terminal's Ctrl-C, a hangup or ``timeout``'s SIGTERM go to the whole process group,
    the local cluster's workers too; they ignore them, and the client stops the level and
    then closes the cluster (over its own connections, which need no signal). Until this
    runs a worker has them blocked, as the thread that spawned it had (see
    :meth:`ClusterPool._open`), so one arriving as it starts waits, and is then dropped.
    """
    if threading.current_thread() is threading.main_thread():
        for number in PARENTS_SIGNALS:
            signal.signal(number, signal.SIG_IGN)


class _Batch:
    """A share's request ends, kept for its watcher to send in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ends: list[RequestEnd] = []

    def add(self, end: RequestEnd) -> None:
        with self._lock:
            self._ends.append(end)

    def take(self) -> list[RequestEnd]:
        with self._lock:
            ends, self._ends = self._ends, []
        return ends


def run_cluster_task(task: WorkerTask, channel: str, offset: float, handshake: bool) -> ShareResult:
    """In a Dask worker: the share, watched for a stop (see the module docstring).

    ``offset`` is this worker's clock against the client's; ``task.start_wall`` is on
    this worker's clock already. With ``handshake`` (an open loop) the share says when its
    warm-up is done and starts at the client's instant plus ``offset``.
    """
    distributed = require_dask()
    stop = distributed.Event(f"{channel}-stop")
    progress = distributed.Queue(f"{channel}-progress")
    me = distributed.get_worker().address
    batch = _Batch()
    reporter = WallClockTracker(batch.add)
    finished = threading.Event()
    stopped = threading.Event()
    lock = threading.Lock()
    shares: list[asyncio.Future[None]] = []

    def cancel(share: asyncio.Future[None]) -> None:
        with contextlib.suppress(RuntimeError):  # its loop closed as the stop came
            share.get_loop().call_soon_threadsafe(share.cancel)

    def started(share: asyncio.Future[None]) -> None:
        with lock:
            shares.append(share)
            if stopped.is_set():
                share.cancel()

    def watch() -> None:
        while not finished.is_set():
            halt = stop.wait(timeout=WATCH_PERIOD)
            ends = batch.take()
            if ends:
                progress.put((me, ends))
            if halt:
                with lock:
                    stopped.set()
                    for share in shares:
                        cancel(share)
                return

    async def together() -> None:
        ready = distributed.Queue(f"{channel}-ready")
        start = distributed.Variable(f"{channel}-start")
        await asyncio.to_thread(ready.put, me)
        instant = float(await asyncio.to_thread(start.get))
        if instant < 0:  # the level was stopped before it began
            raise asyncio.CancelledError
        delay = instant + offset - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    watcher = threading.Thread(target=watch, name="llmcli-bench-watch", daemon=True)
    watcher.start()
    try:
        return eventloop.run(
            run_share(
                task, reporter=reporter, together=together if handshake else None, started=started
            )
        )
    finally:
        finished.set()
        watcher.join(timeout=5 * WATCH_PERIOD)
        ends = batch.take()
        if ends:
            progress.put((me, ends))
