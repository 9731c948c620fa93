"""``--cluster tls://HOST:PORT``: a scheduler and two workers started as a user starts them
(``dask scheduler --protocol tls``, ``dask worker``) with a throwaway CA's certificates,
every socket on 127.0.0.1. llmcli reaches them with Dask's own TLS settings (the
``DASK_DISTRIBUTED__COMM__TLS__…`` environment variables) and says in one line when they
are missing, unusable, or not trusted by the scheduler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import pytest
from conftest import BENCH_APP, WriteProfiles
from rig.tls import CertAuthority, make_ca
from test_cluster_run import Scheduler, SocketWatch, dask_cluster, off_loopback

from llmcli.bench.cluster import TLS_CA, TLS_CERT, TLS_KEY, parse_cluster
from llmcli.errors import UsageError
from llmcli.mock import MockConfig, MockServerThread

SECRET = "sk-tls-cluster-secret-4242"


def _tls_options(ca: CertAuthority) -> list[str]:
    return [
        "--tls-ca-file", str(ca.cert_path),
        "--tls-cert", str(ca.server_cert_path),
        "--tls-key", str(ca.server_key_path),
    ]  # fmt: skip


@dataclass(frozen=True)
class TlsCluster:
    scheduler: Scheduler
    ca: CertAuthority


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    """A TLS-only scheduler and two TLS workers, their certificates from one new CA (the
    client uses the same certificate: the scheduler asks every peer for one it signed)."""
    directory = tmp_path_factory.mktemp("dask-tls")
    ca = make_ca(directory / "ca")
    options = _tls_options(ca)
    security = {  # the test's own client, waiting for the workers (Dask makes a Security)
        "tls_ca_file": str(ca.cert_path),
        "tls_client_cert": str(ca.server_cert_path),
        "tls_client_key": str(ca.server_key_path),
        "require_encryption": True,
    }
    with dask_cluster(
        directory, 2, *options,
        scheduler_extra=["--protocol", "tls", *options], security=security,
    ) as scheduler:  # fmt: skip
        assert scheduler.address.startswith("tls://127.0.0.1:"), scheduler.address
        yield TlsCluster(scheduler, ca)


def _environment(ca: CertAuthority | None) -> dict[str, str]:
    """This process's environment without any Dask setting, plus ``ca``'s TLS files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    if ca is not None:
        env[TLS_CA] = str(ca.cert_path)
        env[TLS_CERT] = str(ca.server_cert_path)
        env[TLS_KEY] = str(ca.server_key_path)
    return env


def _bench(
    address: str, env: dict[str, str], out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BENCH_APP, "bench", "-p", "mock", "--cluster", address,
         "--out", str(out), *extra],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def _mock_profile(write_profiles: WriteProfiles, server: MockServerThread) -> None:
    write_profiles(
        f'[profiles.mock]\nbase_url = "{server.base_url}"\ndialect = "zen"\n'
        f'model = "big-pickle"\napi_key = "{SECRET}"\n'
    )


def test_a_run_over_a_tls_scheduler_merges_both_workers_records(
    tls_cluster: TlsCluster, write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    address = tls_cluster.scheduler.address
    out = tmp_path / "tls.json"
    with MockServerThread(MockConfig(ttft=0.01, itl=0.002)) as server:
        _mock_profile(write_profiles, server)
        roots = [p.pid for p in tls_cluster.scheduler.processes]
        with SocketWatch(roots) as watch:
            done = _bench(
                address, _environment(tls_cluster.ca), out,
                "--concurrency", "4", "--requests", "20", "--warmup", "2",
                "--max-tokens", "5", "--json",
            )  # fmt: skip
        sent = [r for r in server.server.requests if r.path.endswith("/chat/completions")]
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stdout + done.stderr
    data = json.loads(done.stdout)
    info = data["cluster"]
    assert info["scheduler"] == address and info["local"] is False
    [entry] = info["levels"]
    assert len(entry["workers"]) == 2 and all(w["requests"] > 0 for w in entry["workers"])
    assert all(w["worker"].startswith("tls://127.0.0.1:") for w in entry["workers"])
    # the merged level is the union of both workers' records, and what the server got
    assert sum(w["requests"] for w in entry["workers"]) == len(sent) == 22
    assert sum(w["measured"] for w in entry["workers"]) == 20
    summary = data["profiles"][0]["levels"]["c=4"]
    assert (summary["requests"], summary["ok"]) == (20, 20)
    level = json.loads(out.read_text())["profiles"][0]["levels"][0]
    assert len(level["requests"]) == 22
    # the scheduler's and workers' processes kept to loopback
    assert len(watch.pids) >= 5 and watch.seen
    assert not off_loopback(watch.seen), off_loopback(watch.seen)


def test_without_dasks_tls_settings_it_is_one_line(
    tls_cluster: TlsCluster, write_profiles: WriteProfiles, tmp_path: Path
) -> None:
    address = tls_cluster.scheduler.address
    with MockServerThread(MockConfig()) as server:
        _mock_profile(write_profiles, server)
        done = _bench(address, _environment(None), tmp_path / "none.json")
        assert not server.server.requests  # refused before any request
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"llmcli: error: --cluster {address}: Dask's TLS settings are missing: set {TLS_CA},"
        f" {TLS_CERT} and {TLS_KEY} (PEM files: the cluster's CA, this client's certificate,"
        " its key)"
    ]
    assert not (tmp_path / "none.json").exists()


@pytest.mark.parametrize(
    ("refused_by", "reason"),
    [("client", "certificate verify failed"), ("scheduler", "unknown ca")],
)
def test_a_certificate_either_side_does_not_trust_is_one_line(
    tls_cluster: TlsCluster, write_profiles: WriteProfiles, tmp_path: Path,
    refused_by: str, reason: str,
) -> None:  # fmt: skip
    """Another CA's files (client: this side refuses the scheduler's certificate), or only
    this side's certificate from another CA (scheduler: it refuses this side's): one line
    says the handshake failed and OpenSSL's reason, at once, exit 3."""
    address = tls_cluster.scheduler.address
    stranger = make_ca(tmp_path / "other-ca")
    with MockServerThread(MockConfig()) as server:
        _mock_profile(write_profiles, server)
        env = _environment(stranger)  # LLMCLI_CONFIG included
        if refused_by == "scheduler":
            env[TLS_CA] = str(tls_cluster.ca.cert_path)
        done = _bench(address, env, tmp_path / "refused.json")
        assert not [r for r in server.server.requests if r.path.endswith("/chat/completions")]
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("llmcli: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert errors[0].startswith(
        f"llmcli: error: --cluster {address}: the TLS handshake with the scheduler failed ("
    )
    assert reason in errors[0] and TLS_CA in errors[0] and TLS_CERT in errors[0]


def test_parse_cluster_reads_dasks_tls_settings(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    files = {
        "distributed.comm.tls.ca-file": str(ca.cert_path),
        "distributed.comm.tls.client.cert": str(ca.server_cert_path),
        "distributed.comm.tls.client.key": str(ca.server_key_path),
    }
    with dask.config.set(files):
        assert parse_cluster(" tls://sched.example:8786 ") == "tls://sched.example:8786"
        assert parse_cluster("tls://[::1]:8786") == "tls://[::1]:8786"
    unset = {**files, "distributed.comm.tls.client.cert": None}
    refused = pytest.raises(UsageError, match=r"^--cluster tls://h:1: Dask's TLS settings are")
    with dask.config.set(unset), refused:
        parse_cluster("tls://h:1")
    # a file that is not there, or not a key: one line naming the settings to check
    missing = str(tmp_path / "gone.pem")
    for broken in ({"distributed.comm.tls.ca-file": missing},
                   {"distributed.comm.tls.client.key": str(ca.cert_path)}):  # fmt: skip
        unusable = pytest.raises(UsageError, match=r"TLS files cannot be used .*check DASK_")
        with dask.config.set({**files, **broken}), unusable:
            parse_cluster("tls://h:1")
