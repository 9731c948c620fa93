"""``bench --html FILE``: one self-contained page to share a run (or runs read back).

The page is built from results-file data (:func:`llmcli.bench.report.run_to_json`'s form),
so a run just made and ``bench compare A.json B.json --html`` share the code: the
side-by-side table (the terminal table's figures, :func:`~llmcli.bench.report.table_rows`),
the knee search, the verdicts, latency and tokens/s against load, each level's TTFT, ITL
and e2e distributions (empirical CDFs), failures, the settings, the servers and the
formulas.

Self-contained means nothing is fetched when it is viewed: CSS inline, charts inline SVG
drawn by :mod:`llmcli.bench.svg`, no script, no font, no image; a Content-Security-Policy
meta forbids every fetch, so a browser enforces it. Every string that came from a server,
a profile or a file passes through :func:`~llmcli.bench.svg.escape`; a base URL is shown
without user, password or query (where a key may hide).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmcli.bench.metrics import FORMULAS, measure
from llmcli.bench.plot import load_of
from llmcli.bench.report import record_from_json, table_rows
from llmcli.bench.sharecheck import CLUSTER, PROCESSES, share_rows, share_sections
from llmcli.bench.svg import Series, cdf_points, escape, legend, line_chart
from llmcli.bench.verdict import CONFIDENCE, MIN_REQUESTS, RESAMPLES, format_ratio
from llmcli.errors import UsageError

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none';"
    " form-action 'none'"
)
# (metric, statistic, legend words) of the latency-against-load chart; the dash tells them apart.
LOAD_LATENCY: tuple[tuple[str, str, str], ...] = (
    ("ttft", "p50", "TTFT p50"),
    ("ttft", "p99", "TTFT p99"),
    ("itl", "p50", "ITL p50"),
    ("e2e", "p50", "e2e p50"),
)
DISTRIBUTIONS: tuple[tuple[str, str], ...] = (("ttft", "TTFT"), ("itl", "ITL"), ("e2e", "e2e"))
ERRORS_SHOWN = 5  # distinct error texts a level lists
LIST_SHOWN = 16  # values a list in the settings or server info shows

# A results file as the report reads it: a label prefix (None for a run of its own) and data.
Source = tuple[str | None, Mapping[str, Any]]

STYLE = """
:root{color-scheme:light dark;--fg:#1d1f23;--bg:#fff;--muted:#5f6670;--line:#d5d9de;
--panel:#f5f7f9;--good:#1a7f37;--bad:#c62828}
@media (prefers-color-scheme:dark){:root{--fg:#e4e6ea;--bg:#16181c;--muted:#a0a7b1;
--line:#3a3f47;--panel:#1f2228;--good:#56d364;--bad:#ff7b72}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:1rem 1.2rem 3rem;font:15px/1.45 system-ui,
-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:2rem 0 .6rem;
border-bottom:1px solid var(--line);padding-bottom:.2rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.muted,.note{color:var(--muted)}.warn{color:var(--bad);font-weight:600}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:.9rem}
th,td{border-bottom:1px solid var(--line);padding:.25rem .6rem;text-align:left;
vertical-align:top}td.num,th.num{text-align:right;white-space:nowrap}
tbody.level tr:first-child td,table.shares tr.first td{border-top:2px solid var(--line)}
table.shares th.num{white-space:normal}
th{background:var(--panel);position:sticky;top:0}
.better{color:var(--good);font-weight:600;white-space:nowrap}.fail{color:var(--bad);font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1rem}
figure{margin:0;padding:.5rem;background:var(--panel);border-radius:6px;
break-inside:avoid}figcaption{font-weight:600;margin-bottom:.3rem}
svg.chart{display:block;width:100%;height:auto;color:var(--fg);font-size:15px}
svg.chart .grid line{stroke:var(--line);stroke-width:1}
svg.chart text{fill:currentColor}svg.chart .label{fill:var(--muted)}
ul.legend{list-style:none;margin:.3rem 0 0;padding:0;display:flex;flex-wrap:wrap;
gap:.2rem 1rem;font-size:.85rem}ul.legend li{display:flex;align-items:center;gap:.3rem}
svg.swatch{width:28px;height:10px;color:var(--fg)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.2rem 0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
dd>.item+.item{border-top:1px solid var(--line);margin-top:.2rem;padding-top:.2rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
@media (max-width:600px){body{padding:.6rem}.charts{grid-template-columns:1fr}
dl{grid-template-columns:1fr}dd{margin-left:.6rem}}
@media print{:root{--fg:#000;--bg:#fff;--panel:#fff;--line:#bbb;--muted:#444}
body{max-width:none;font-size:11px}th{position:static}
.scroll{overflow:visible}h2{break-after:avoid}}
"""


def build_html(sources: Sequence[Source], verdicts: Sequence[Mapping[str, Any]]) -> str:
    """The whole page for one run (a single source with prefix ``None``) or several files."""
    profiles = [
        (_label(prefix, profile), profile)
        for prefix, data in sources
        for profile in data.get("profiles", [])
    ]
    title = "llmcli bench" if len(sources) == 1 else "llmcli bench compare"
    columns = [
        (label, {level["load"]: level.get("summary", {}) for level in p.get("levels", [])})
        for label, p in profiles
    ]
    body = [
        f"<h1>{escape(title)}</h1>",
        _header(sources, profiles),
        "<h2>Side by side</h2>",
        _summary_table(columns) if profiles else '<p class="warn">No profile was measured.</p>',
        *(
            _sweep(data["sweep"], prefix, {label: i for i, (label, _) in enumerate(profiles)})
            for prefix, data in sources
            if data.get("sweep")
        ),
        _verdicts(verdicts),
        _load_charts(columns),
        _distributions(profiles),
        _failures(profiles),
        _workers(sources),
        _servers(profiles),
        _settings(sources),
        _formulas(sources),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="color-scheme" content="light dark"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def check_html_path(path: Path) -> None:
    """Refuse an ``--html`` that cannot be written, before a run that would lose it."""
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(f"--html {path}: give a file in a directory that exists")


def write_html(text: str, path: Path) -> None:
    """The page, as UTF-8 (a lone surrogate from a file is replaced, never a crash)."""
    try:
        path.write_text(text, encoding="utf-8", errors="replace")
    except OSError as error:
        raise UsageError(f"cannot write the report to {path}: {error.strerror or error}") from None


def _label(prefix: str | None, profile: Mapping[str, Any]) -> str:
    name = str(profile.get("name", "?"))
    return name if prefix is None else f"{prefix}:{name}"


def public_url(url: object) -> str:
    """A base URL without user, password, query or fragment: where a key could be put."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(not a URL)"


def _header(sources: Sequence[Source], profiles: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    out = []
    for prefix, data in sources:
        started = escape(data.get("started", "?"))
        which = f"<code>{escape(prefix)}</code>: " if prefix is not None else ""
        out.append(f'<p class="muted">{which}run started {started} (UTC)</p>')
        if data.get("interrupted"):
            out.append(f'<p class="warn">{which}interrupted run: what arrived before the end.</p>')
        if data.get("error"):
            out.append(f'<p class="warn">{which}the run ended early: {escape(data["error"])}</p>')
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td><code>{escape(public_url(p.get('base_url')))}</code>"
        f"</td><td>{escape(p.get('dialect') or '-')}</td><td>{escape(p.get('model') or '-')}"
        "</td></tr>"
        for label, p in profiles
    )
    out += [
        f'<p class="warn">{escape(label)} {escape(level.get("load"))}: incomplete,'
        f" {escape(level['incomplete'])}; its figures are what arrived.</p>"
        for label, p in profiles
        for level in p.get("levels", [])
        if level.get("incomplete")
    ]
    if rows:
        out.append(
            '<div class="scroll"><table><thead><tr><th>profile</th><th>base URL</th>'
            f"<th>dialect</th><th>model</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    return "\n".join(out)


def _summary_table(columns: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    labels = [label for label, _ in columns]
    head = ["<th>load</th><th>metric</th>"]
    head += [f'<th class="num">{escape(label)}</th>' for label in labels]
    head += [f'<th class="num">{escape(label)}/{escape(labels[0])}</th>' for label in labels[1:]]
    bodies = []
    for level, rows in table_rows(columns):
        lines = []
        for index, (metric, cells, ratios) in enumerate(rows):
            lines.append(
                f"<tr><td>{escape(level) if index == 0 else ''}</td><td>{escape(metric)}</td>"
                + "".join(f'<td class="num">{escape(cell)}</td>' for cell in cells + ratios)
                + "</tr>"
            )
        bodies.append(f'<tbody class="level">{"".join(lines)}</tbody>')
    return (
        f'<div class="scroll"><table class="summary"><thead><tr>{"".join(head)}</tr></thead>'
        f"{''.join(bodies)}</table></div>"
    )


def _sweep(data: Mapping[str, Any], prefix: str | None, colours: Mapping[str, int]) -> str:
    """The knee search's steps as a table, and each step's share within the SLO against
    load beside the target (a profile's points in its colour, the target dashed)."""
    unit = "concurrency" if data.get("load") == "concurrency" else "requests/s"
    rows = []
    series = []
    for profile in data.get("profiles", []):
        name = _label(prefix, profile)
        steps = profile.get("steps", [])
        points = sorted((_num(s.get("level")), _num(s.get("share"))) for s in steps)
        series.append(Series(name, points, colours.get(name, 0)))
        for number, step in enumerate(profile.get("steps", []), 1):
            result = "pass" if step.get("passed") else '<span class="fail">FAIL</span>'
            rows.append(
                f"<tr><td>{escape(name)}</td><td class=num>{number}</td>"
                f"<td class=num>{escape(_number(step.get('level')))}</td>"
                f"<td class=num>{escape(step.get('requests'))}</td>"
                f"<td class=num>{escape(step.get('within_slo'))}</td>"
                f"<td class=num>{escape(_share(step.get('share')))}</td><td>{result}</td></tr>"
            )
        knee = escape(profile.get("knee", {}).get("summary", "-"))
        rows.append(f'<tr><td>{escape(name)}</td><td colspan="6">knee: {knee}</td></tr>')
    target = _share(data.get("target"))
    levels = [x for s in series for x, _ in s.points if math.isfinite(x)]
    if levels:
        line = [(min(levels), _num(data.get("target"))), (max(levels), _num(data.get("target")))]
        series.append(Series("target", line, -1, dash=1, markers=False))
    chart = line_chart(
        "share of requests within the SLO against load", series, x_label=unit,
        y_label="share within SLO", y_log=False,
    )  # fmt: skip
    shown = [(s.label, s.color, s.dash) for s in series]
    figure = _figure(f"Share within the SLO against {unit}", chart, legend(shown)) if chart else ""
    return (
        f"<h2>Knee search</h2><p>A level passes when at least {escape(target)} of its"
        " measured requests meet the SLO (failures count as misses); levels in the order"
        " tried.</p>"
        f'<div class="scroll"><table><thead><tr><th>profile</th><th class=num>step</th>'
        f"<th class=num>{unit}</th><th class=num>requests</th><th class=num>within SLO</th>"
        f"<th class=num>share</th><th>result</th></tr></thead><tbody>{''.join(rows)}"
        f'</tbody></table></div><div class="charts">{figure}</div>'
    )


def _verdicts(verdicts: Sequence[Mapping[str, Any]]) -> str:
    if not verdicts:
        return ""
    rows = []
    for verdict in verdicts:
        ratio, interval, better = verdict.get("ratio"), verdict.get("ci95"), verdict.get("better")
        ci = "-"
        if interval:
            ci = f"{format_ratio(float(interval[0]))}–{format_ratio(float(interval[1]))}"
        rows.append(
            f"<tr><td>{escape(verdict.get('load'))}</td><td>{escape(verdict.get('label'))}</td>"
            f"<td>{escape(verdict.get('a'))}/{escape(verdict.get('b'))}</td>"
            f"<td class=num>{'-' if ratio is None else format_ratio(float(ratio))}</td>"
            f"<td class=num>{ci}</td>"
            + (f'<td class="better">✓ {escape(better)}</td>' if better else "<td>-</td>")
            + f"<td>{escape(verdict.get('sentence'))}</td></tr>"
        )
    return (
        "<h2>Verdicts</h2><p>Ratio A/B of the medians (A the later profile, B the earlier,"
        " as in the table's ratio columns), with its 95% bootstrap interval;"
        " the better side is marked where the interval excludes 1.</p>"
        '<div class="scroll"><table><thead><tr><th>load</th><th>metric</th><th>A/B</th>'
        "<th class=num>ratio</th><th class=num>95% CI</th><th>better</th><th>in words</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _load_charts(columns: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Latency and aggregate tok/s against load; one pair per kind of load (concurrency or
    rate: files compared may differ), each level a point, sweep steps included."""
    by_kind: dict[str, list[tuple[int, str, list[tuple[float, Mapping[str, Any]]]]]] = {}
    for index, (label, by_level) in enumerate(columns):
        points: dict[str, list[tuple[float, Mapping[str, Any]]]] = {}
        for level, summary in by_level.items():
            try:
                kind, value = load_of(level)
            except ValueError:
                continue
            points.setdefault(kind, []).append((value, summary))
        for kind, found in points.items():
            by_kind.setdefault(kind, []).append((index, label, sorted(found, key=_first)))
    figures = []
    for kind, lines in by_kind.items():
        latency = [
            Series(
                f"{label} {words}",
                [(x, _ms(s, metric, stat)) for x, s in found],
                color=index,
                dash=dash,
            )
            for index, label, found in lines
            for dash, (metric, stat, words) in enumerate(LOAD_LATENCY)
        ]
        tps = [
            Series(label, [(x, _num(s.get("output_tokens_per_second"))) for x, s in found], index)
            for index, label, found in lines
        ]
        profiles_legend = [(label, index, 0) for index, label, _ in lines]
        metric_legend = [(words, -1, dash) for dash, (_, _, words) in enumerate(LOAD_LATENCY)]
        figures.append(
            _figure(
                f"Latency against {kind}",
                line_chart(f"latency against {kind}", latency, x_label=kind, y_label="ms"),
                legend(profiles_legend) + legend(metric_legend),
            )
        )
        figures.append(
            _figure(
                f"Output tokens/s (aggregate) against {kind}",
                line_chart(
                    f"output tokens/s against {kind}", tps, x_label=kind, y_label="tokens/s"
                ),
                legend(profiles_legend),
            )
        )
    if not figures:
        return ""
    return f'<h2>Against load</h2><div class="charts">{"".join(figures)}</div>'


def _distributions(profiles: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Each level's TTFT, ITL and e2e empirical CDFs, a line a profile (successes only)."""
    levels: list[str] = []
    for _, profile in profiles:
        levels.extend(
            level["load"] for level in profile.get("levels", []) if level["load"] not in levels
        )
    sections = []
    for load in levels:
        samples = []
        for index, (label, profile) in enumerate(profiles):
            for level in profile.get("levels", []):
                if level["load"] == load:
                    samples.append((index, label, _samples(level.get("requests", []))))
        figures = []
        for metric, words in DISTRIBUTIONS:
            series = [
                Series(label, cdf_points(values[metric]), index, step=True, markers=False)
                for index, label, values in samples
            ]
            chart = line_chart(
                f"{words} CDF at {load}",
                series,
                x_label=f"{words}, ms",
                y_label="share of requests" if metric != "itl" else "share of gaps",
                y_log=False,
            )
            missing = [label for _, label, values in samples if not values[metric]]
            note = (
                f'<p class="note">no {words} value from {", ".join(escape(m) for m in missing)}</p>'
                if missing and chart
                else ""
            )
            shown = [(label, index, 0) for index, label, values in samples if values[metric]]
            figures.append(_figure(f"{words} at {load}", chart, legend(shown) + note))
        sections.append(f'<h3>{escape(load)}</h3><div class="charts">{"".join(figures)}</div>')
    if not sections:
        return ""
    return (
        "<h2>Latency distributions</h2><p>Empirical CDFs of the measured requests that"
        " succeeded: a point (x, y) says a share y of them took x or less. ITL pools every"
        " gap of every request.</p>" + "".join(sections)
    )


def _samples(requests: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {metric: [] for metric, _ in DISTRIBUTIONS}
    for data in requests:
        try:
            record = record_from_json(data)
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited file's broken request: left out, as compare does
        if record.warmup:
            continue
        m = measure(record)
        if not m.ok:
            continue
        if m.ttft is not None:
            found["ttft"].append(m.ttft * 1000)
        if m.e2e is not None:
            found["e2e"].append(m.e2e * 1000)
        found["itl"].extend(gap * 1000 for gap in m.itl)
    return found


def _failures(profiles: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    rows = []
    for label, profile in profiles:
        for level in profile.get("levels", []):
            summary = level.get("summary", {})
            measured = [r for r in level.get("requests", []) if not r.get("warmup")]
            texts: dict[str, int] = {}
            for request in measured:
                if request.get("error_kind"):
                    text = f"{request['error_kind']}: {request.get('error') or ''}".strip(": ")
                    texts[text] = texts.get(text, 0) + 1
            if not texts:
                continue
            listed = sorted(texts.items(), key=lambda item: -item[1])[:ERRORS_SHOWN]
            items = "".join(
                f"<li>{count} &times; <code>{escape(t)}</code></li>" for t, count in listed
            )
            more = len(texts) - len(listed)
            rows.append(
                f"<tr><td>{escape(label)}</td><td>{escape(level.get('load'))}</td>"
                f"<td class=num>{escape(summary.get('failed', '-'))}/{len(measured)}</td>"
                f"<td><ul>{items}</ul>{f'<p>and {more} more</p>' if more > 0 else ''}</td></tr>"
            )
    if not rows:
        return ""
    return (
        "<h2>Failures</h2><p>Failed requests stay in every total; a measurement is never"
        " retried.</p>"
        '<div class="scroll"><table><thead><tr><th>profile</th><th>load</th>'
        "<th class=num>failed</th><th>errors (server text, as received)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _workers(sources: Sequence[Source]) -> str:
    """Each pool's table (``--workers``, ``--cluster``): every level's share by worker,
    checked on its own records, a cluster's clock offsets too (as the terminal's)."""
    blocks = []
    for prefix, data in sources:
        for title, pool, clocks in share_sections(data.get("environment") or {}):
            which = f"{prefix}: " if prefix is not None else ""
            heads, rows = share_rows(pool, clocks)
            head = "".join(
                f"<th{'' if n < 4 else ' class=num'}>{escape(h)}</th>" for n, h in enumerate(heads)
            )
            body = "".join(
                f"<tr{' class=first' if row[0] else ''}>"
                + "".join(
                    f"<td{'' if n < 4 else ' class=num'}>{escape(cell)}</td>"
                    for n, cell in enumerate(row)
                )
                + "</tr>"
                for row in rows
            )
            facts = {k: pool[k] for k in ("local", "dask", "processes") if k in pool}
            blocks.append(
                f"<h3>{escape(which + title)}</h3>{_dl(facts) if facts else ''}"
                f'<div class="scroll"><table class="shares"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>"
            )
    if not blocks:
        return ""
    return (
        "<h2>Workers</h2><p>Each level's share by worker, checked on its own records: every"
        " record it sent back (warm-up included), its token frames, frames read together"
        " (stamped as the one before them: one read took both), and its read lag."
        " A cluster's workers have clocks of their own: each one's offset from the client's"
        " wall clock, measured before the level, give or take half the round trip.</p>"
        + "".join(blocks)
    )


def _servers(profiles: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    blocks = []
    for label, profile in profiles:
        server = profile.get("server") or {}
        fitted = profile.get("input_tokens")
        content = (
            _dl(server) if server else '<p class="muted">the server said nothing of itself</p>'
        )
        if fitted:
            content += "<h4>synthetic prompt</h4>" + _dl(fitted)
        blocks.append(f"<h3>{escape(label)}</h3>{content}")
    if not blocks:
        return ""
    return (
        "<h2>Servers</h2><p>What each server said of itself (llama.cpp <code>/props</code>,"
        " <code>/v1/models</code>), cut to fields that describe it.</p>" + "".join(blocks)
    )


def _settings(sources: Sequence[Source]) -> str:
    out = ["<h2>Settings</h2>"]
    for prefix, data in sources:
        if prefix is not None:
            out.append(f"<h3>{escape(prefix)}</h3>")
        out.append(_dl(data.get("settings") or {}))
        environment = data.get("environment") or {}
        where = {k: v for k, v in environment.items() if k not in (CLUSTER, PROCESSES)}
        out.append("<h4>where it ran</h4>" + _dl(where))  # the pools: under Workers
    return "".join(out)


def _formulas(sources: Sequence[Source]) -> str:
    stored = sources[0][1].get("formulas") if sources else None
    formulas = dict(stored) if isinstance(stored, Mapping) and stored else dict(FORMULAS)
    slos = {str((data.get("settings") or {}).get("slo", "")) for _, data in sources}
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(text)}</td></tr>"
        for name, text in formulas.items()
    )
    rows += "".join(
        f"<tr><th>SLO</th><td>goodput counts successful requests with {escape(slo)}</td></tr>"
        for slo in sorted(slos)
        if slo
    )
    rows += (
        "<tr><th>verdict</th><td>per load level and metric: one value a successful request"
        " (ITL: the request's own median gap); ratio = median(A) / median(B), A the later"
        " profile (or file), B the earlier; "
        f"{CONFIDENCE:.0%} interval: percentile bootstrap, {RESAMPLES:,} resamples of each"
        " side's requests with replacement, the 2.5th and 97.5th percentiles of the resampled"
        " ratios, seeded; a side is better when the interval excludes 1; no verdict under"
        f" {MIN_REQUESTS} successful requests a side</td></tr>"
        "<tr><th>CDF</th><td>share of successful measured requests (ITL: of gaps) with a"
        " value at or below x</td></tr>"
        "<tr><th>percentiles</th><td>pooled over every request of a level (over processes"
        " too), never averaged; linear interpolation between order statistics</td></tr>"
    )
    return f'<h2>Formulas</h2><div class="scroll"><table>{rows}</table></div>'


def _dl(data: Mapping[str, Any]) -> str:
    items = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            shown = _dl(value) if value else "-"
        elif isinstance(value, list):
            shown = _list(value)
        else:
            shown = escape(_plain(value))
        items.append(f"<dt>{escape(key)}</dt><dd>{shown}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def _list(values: list[Any]) -> str:
    """Mappings one under another, each in its own box; plain values as "1, 4" (a long
    list cut, saying how long it was)."""
    if not values:
        return "-"
    if all(isinstance(value, Mapping) for value in values):
        return "".join(f'<div class="item">{_dl(value)}</div>' for value in values)
    shown = ", ".join(escape(_plain(value)) for value in values[:LIST_SHOWN])
    return shown + (f" … ({len(values)} in all)" if len(values) > LIST_SHOWN else "")


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def _figure(caption: str, chart: str, after: str) -> str:
    body = chart or '<p class="muted">nothing to draw: no successful request</p>'
    return f"<figure><figcaption>{escape(caption)}</figcaption>{body}{after}</figure>"


def _first(item: tuple[float, Any]) -> float:
    return item[0]


def _ms(summary: Mapping[str, Any], metric: str, stat: str) -> float:
    return _num(summary.get("metrics", {}).get(metric, {}).get(stat)) * 1000


def _num(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _share(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"
