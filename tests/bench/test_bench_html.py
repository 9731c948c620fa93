"""The HTML report's builder (``bench --html``): its sections, the same figures as the
terminal table, escaping of every untrusted string, and nothing that fetches anything."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from llmcli.bench.html import CSP, build_html, check_html_path, public_url, write_html
from llmcli.bench.metrics import RequestRecord, Slo, TokenChunk
from llmcli.bench.records import BenchRun, LevelResult, ProfileRun
from llmcli.bench.report import run_to_json, table_rows
from llmcli.bench.sweep import SweepBounds
from llmcli.bench.workload import Settings
from llmcli.errors import UsageError

HOSTILE = "<script>alert(1)</script>\x1b]0;x\x07"


def record(index: int, ttft: float, gap: float = 0.01, tokens: int = 6) -> RequestRecord:
    sent = index * 1.0
    chunks = [TokenChunk(sent + ttft + gap * i, "content") for i in range(tokens)]
    return RequestRecord(
        index=index,
        sent_at=sent,
        first_chunk_at=chunks[0].at,
        chunks=chunks,
        finish_at=chunks[-1].at,
        completion_tokens=tokens,
        prompt_tokens=10,
    )


def failed(index: int, text: str = "HTTP 500: boom") -> RequestRecord:
    return RequestRecord(index=index, sent_at=index * 1.0, error_kind="status", error=text)


def profile(
    name: str,
    scale: float,
    levels: tuple[int, ...] = (1, 4),
    *,
    model: str = "m",
    fail: bool = False,
) -> ProfileRun:
    run = ProfileRun(name, "http://127.0.0.1:9/v1", "llamacpp", model)
    for concurrency in levels:
        records = (
            [failed(i) for i in range(6)]
            if fail
            else [record(i, scale * concurrency * (1 + i / 10)) for i in range(8)]
        )
        run.levels.append(LevelResult(concurrency=concurrency, records=records))
    return run


def make_run(*profiles: ProfileRun, sweep: SweepBounds | None = None) -> dict[str, Any]:
    run = BenchRun(
        settings=Settings(concurrency=(1, 4), requests=8, slo=Slo(ttft=0.5)),
        started="2026-12-07T12:00:00Z",
        environment={"llmcli": "0.1.0", "host": "box"},
        clock_origin=0.0,
        profiles=list(profiles),
        sweep=sweep,
    )
    return run_to_json(run)


def page(data: dict[str, Any]) -> str:
    return build_html([(None, data)], data["verdicts"])


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    tags.close()
    return tags


def assert_fetches_nothing(text: str) -> None:
    """No element or style that makes a browser fetch: no script, link, image, frame, no
    src/href/srcset/xlink:href/action attribute, no url() or @import in CSS."""
    tags = parse(text)
    names = {tag for tag, _ in tags.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "image", "use",
                        "video", "audio", "source", "form", "base", "frame"}  # fmt: skip
    for tag, attrs in tags.tags:
        for attribute in attrs:
            assert attribute not in {"src", "href", "srcset", "xlink:href", "action", "poster"}, tag
            assert not attribute.startswith("on"), (tag, attribute)  # no event handler
    assert "url(" not in text and "@import" not in text
    assert "javascript:" not in text.lower()
    # The only URLs at all are the profiles' base URLs, shown as text inside <code>.
    for url in re.findall(r"https?://[^\s<\"']+", text):
        assert f"<code>{url}</code>" in text, url


def test_a_run_has_every_section_and_the_tables_figures() -> None:
    data = make_run(profile("fast", 0.05), profile("slow", 0.2))
    text = page(data)
    assert text.startswith("<!DOCTYPE html>")
    for heading in ("Side by side", "Verdicts", "Against load", "Latency distributions",
                    "Servers", "Settings", "Formulas"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in text
    assert f'content="{CSP}"' in text and "default-src 'none'" in CSP
    # The side-by-side table holds exactly the terminal table's cells, ratios included.
    columns = [
        (p["name"], {lv["load"]: lv["summary"] for lv in p["levels"]}) for p in data["profiles"]
    ]
    for _level, rows in table_rows(columns):
        for metric, cells, ratios in rows:
            row = f"<td>{metric}</td>" + "".join(
                f'<td class="num">{html.escape(c)}</td>' for c in cells + ratios
            )
            assert row in text, metric
    # Verdicts: the better side marked, the sentence and the interval.
    assert '<td class="better">✓ fast</td>' in text
    assert "fast reaches the first token" in text and "95% CI" in text
    # Charts: 2 against load, 3 CDFs for each of the 2 levels; each series a path.
    assert text.count('<svg class="chart"') == 2 + 3 * 2
    assert "(e2e - TTFT) / (output tokens - 1)" in text  # the formulas
    assert "percentile bootstrap, 2,000 resamples" in text
    assert "ttft&lt;=500ms" in text  # the SLO
    assert_fetches_nothing(text)


def test_every_untrusted_string_is_escaped_and_neutralised() -> None:
    hostile = profile(HOSTILE, 0.1, model=HOSTILE)
    hostile.server = {"props": {"build_info": HOSTILE, HOSTILE: 1}, "models": [{"id": HOSTILE}]}
    hostile.levels[0].records.append(failed(99, f"HTTP 500: {HOSTILE}"))
    data = make_run(hostile, profile("b", 0.1))
    data["environment"]["host"] = HOSTILE
    text = page(data)
    assert "<script" not in text and "\x1b" not in text and "\x07" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;␛]0;x␇" in text
    tags = parse(text)
    assert {tag for tag, _ in tags.tags}.isdisjoint({"script"})
    # It reached the page as text: in the header, the table, the verdicts, the servers,
    # the failures and the settings, and in the charts' titles.
    assert text.count("&lt;script&gt;") >= 8
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;␛]0;x␇</title>" in text
    assert_fetches_nothing(text)


def test_empty_run_says_so_and_draws_nothing() -> None:
    text = page(make_run())
    assert "No profile was measured." in text
    assert "<svg" not in text and "<h2>Verdicts</h2>" not in text
    assert "<h2>Formulas</h2>" in text and "<h2>Settings</h2>" in text
    assert_fetches_nothing(text)


def test_one_profile_one_level_has_no_verdicts_but_charts() -> None:
    text = page(make_run(profile("alone", 0.1, levels=(1,))))
    assert "<h2>Verdicts</h2>" not in text
    assert text.count('<svg class="chart"') == 2 + 3  # a point against load; 3 CDFs
    assert "alone/" not in text  # no ratio column


def test_a_failed_profile_shows_its_errors_and_is_left_out_of_the_curves() -> None:
    data = make_run(profile("ok", 0.1), profile("down", 0.1, fail=True))
    text = page(data)
    assert "<h2>Failures</h2>" in text
    assert "6 &times; <code>status: HTTP 500: boom</code>" in text
    assert "no verdict" in text
    cdfs = text.split("<h2>Latency distributions</h2>")[1].split("<h2>")[0]
    assert "no TTFT value from down" in cdfs
    assert '<g class="series"><title>down</title>' not in cdfs
    assert '<g class="series"><title>ok</title>' in cdfs


def test_only_failures_draw_no_curve_but_say_why() -> None:
    text = page(make_run(profile("down", 0.1, fail=True)))
    cdfs = text.split("<h2>Latency distributions</h2>")[1].split("<h2>")[0]
    assert "<svg" not in cdfs and "nothing to draw: no successful request" in cdfs


def test_sweep_steps_and_knee_are_shown() -> None:
    bounds = SweepBounds(start=1, limit=8, max_steps=4, target=0.9)
    text = page(make_run(profile("a", 0.1, levels=(1, 2, 4)), sweep=bounds))
    assert "<h2>Knee search</h2>" in text and "knee: " in text
    assert "at least 90.0% of its" in text
    # Each step's share against load, beside the target; the steps are in the load charts.
    knee = text.split("<h2>Knee search</h2>")[1].split("<h2>")[0]
    assert "Share within the SLO against concurrency" in knee
    assert '<g class="series"><title>a</title>' in knee
    assert '<g class="series"><title>target</title>' in knee
    assert text.count('<svg class="chart"') == 1 + 2 + 3 * 3


def test_open_loop_levels_are_drawn_against_the_rate() -> None:
    run = ProfileRun("a", "http://127.0.0.1:9/v1", "llamacpp", "m")
    for rate in (2.0, 8.0):
        run.levels.append(
            LevelResult(concurrency=1, rate=rate, records=[record(i, 0.1) for i in range(6)])
        )
    text = page(make_run(run))
    assert "Latency against request rate /s" in text and "<h3>rate 2/s</h3>" in text
    assert text.count('<svg class="chart"') == 2 + 3 * 2


def test_interrupted_run_is_marked() -> None:
    data = make_run(profile("a", 0.1))
    data["interrupted"] = True
    assert "interrupted run" in page(data)


def test_compare_labels_profiles_by_file() -> None:
    first, second = make_run(profile("a", 0.1)), make_run(profile("a", 0.2))
    text = build_html([("before", first), ("after", second)], [])
    assert "llmcli bench compare" in text and "before:a" in text and "after:a" in text
    assert "<h3>before</h3>" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("https://user:sk-secret@host.example/v1?key=sk-secret#x", "https://host.example/v1"),
        ("http://[::1]:9/v1", "http://[::1]:9/v1"),
        ("not a url", "(not a URL)"),
        ("http://h:99999/v1", "(not a URL)"),
    ],
)
def test_base_urls_lose_credentials_and_query(url: str, shown: str) -> None:
    assert public_url(url) == shown


def test_a_key_in_a_base_url_never_reaches_the_page() -> None:
    run = profile("a", 0.1)
    run.base_url = "https://user:sk-secret@host.example/v1?api_key=sk-secret"
    assert "sk-secret" not in page(make_run(run))


def test_paths_refused_before_a_run_and_unwritable_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="give a file in a directory that exists"):
        check_html_path(tmp_path / "missing" / "r.html")
    with pytest.raises(UsageError, match="give a file"):
        check_html_path(tmp_path)
    with pytest.raises(UsageError, match="cannot write the report to /dev/full"):
        write_html("x" * 100_000, Path("/dev/full"))
    target = tmp_path / "r.html"
    write_html("a\udc80b", target)  # a lone surrogate from a file: replaced, not a crash
    assert target.read_text(encoding="utf-8") == "a?b"


def test_lists_in_settings_and_server_info_read_as_lists() -> None:
    run = profile("a", 0.1)
    run.server = {"models": [{"id": "one"}, {"id": "two"}]}
    run.input_tokens = {"target": 64, "measured": list(range(40))}
    text = page(make_run(run))
    assert "<dt>concurrency</dt><dd>1, 4</dd>" in text
    assert text.count('<div class="item"><dl><dt>id</dt>') == 2
    assert "0, 1, 2" in text and "15 … (40 in all)" in text and ", 16" not in text


def test_each_workers_share_and_clock_is_shown_escaped() -> None:
    worker = {
        "worker": "tcp://127.0.0.1:4001", "hostname": HOSTILE, "requests": 5,
        "measured": 5, "token_frames": 320, "frames_read_together": 1,
        "read_lag_p99_s": 0.00787, "read_lag_max_s": 0.0079,
        "clock_offset_s": -0.0000031, "clock_uncertainty_s": 0.00046,
    }  # fmt: skip
    data = make_run(profile("a", 0.1))
    data["environment"]["cluster"] = {
        "scheduler": "tcp://127.0.0.1:4000", "local": True, "dask": "2026.8.0",
        "workers": [{"worker": "tcp://127.0.0.1:4001", "hostname": HOSTILE}],
        "levels": [{"profile": HOSTILE, "load": "c=4", "workers": [worker]}],
    }  # fmt: skip
    text = page(data)
    shares = text.split("<h2>Workers</h2>")[1].split("<h2>")[0]
    assert "<h3>cluster tcp://127.0.0.1:4000: each worker&#x27;s share</h3>" in shares
    for head in ("worker", "host", "token frames", "read together", "read lag p99 ms",
                 "clock offset ms"):  # fmt: skip
        assert f">{head}</th>" in shares
    cells = re.findall(r"<td[^>]*>(.*?)</td>", shares)
    assert cells == [
        "&lt;script&gt;alert(1)&lt;/script&gt;␛]0;x␇", "c=4", "tcp://127.0.0.1:4001",
        "&lt;script&gt;alert(1)&lt;/script&gt;␛]0;x␇", "5", "320", "1", "7.87", "7.90",
        "0.00 ± 0.46",
    ]  # fmt: skip
    assert "<dt>dask</dt><dd>2026.8.0</dd>" in shares
    assert "<script" not in text and "\x1b" not in text
    # shown once, as a table: not again as a nested list under "where it ran"
    assert "clock_offset_s" not in text
    # --workers' processes: one clock, no offset column
    data["environment"] = {"worker_processes": {"processes": 2, "levels": [
        {"profile": "a", "load": "c=4", "workers": [{**worker, "worker": "pid 7"}]}
    ]}}  # fmt: skip
    shares = page(data).split("<h2>Workers</h2>")[1].split("<h2>")[0]
    assert "<h3>--workers: each process&#x27;s share</h3>" in shares
    assert "pid 7" in shares and "clock offset" not in shares
    assert "<h2>Workers</h2>" not in page(make_run(profile("a", 0.1)))  # no pool, no section
    assert_fetches_nothing(text)


def test_a_run_ended_by_a_lost_worker_says_so_and_marks_the_level() -> None:
    data = make_run(profile("a", 0.1))
    data["error"] = "--cluster: worker tcp://h:1 left the cluster during the level; run again"
    data["profiles"][0]["levels"][1]["incomplete"] = f"worker {HOSTILE} left"
    data["environment"]["cluster"] = {"scheduler": "tcp://h:0", "levels": [
        {"profile": "a", "load": "c=4", "workers": [],
         "incomplete": f"worker {HOSTILE} left"}
    ]}  # fmt: skip
    text = page(data)
    assert "the run ended early: --cluster: worker tcp://h:1 left the cluster" in text
    assert "a c=4: incomplete, worker &lt;script&gt;" in text
    shares = text.split("<h2>Workers</h2>")[1].split("<h2>")[0]
    assert "<td>a</td><td>c=4</td><td>level incomplete</td>" in shares  # in the table too
    assert "<script" not in text
