"""The ``bench --html`` report in a real headless Chromium: made by a real run (llama-server
and the mock server side by side), it renders in light and dark and at phone width with
every chart drawn (each chart's pixels hold each profile's colour), and the page's
Content-Security-Policy stops any fetch (a page that tries one is shown to be stopped,
and the same page without the policy to make it)."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from conftest import WriteProfiles, zen_mock_profile
from headless import Browser
from PIL import Image
from rig import LlamaServer
from test_bench_html import make_run, page, profile
from typer.testing import CliRunner

from llmcli.bench.html import CSP
from llmcli.bench.svg import PALETTE
from llmcli.commands import bench
from llmcli.mock import MockConfig, MockServerThread

app = typer.Typer()
app.add_typer(bench.app, name="bench")
app.command("other")(lambda: None)

CHARTS = 2 + 3 * 2  # against load: latency and tok/s; per level (2): TTFT, ITL, e2e CDFs
# A chart must hold at least this many pixels of each profile's colour: a drawn line of a
# chart covers about 90 or more (the least: a vertical CDF step at phone width); axes, grid and text are grey, never that colour (none is seen when lines are hidden).
MIN_LINE_PIXELS = 50


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chrome = Browser(tmp_path / "chromium-profile")
    try:
        yield chrome
    finally:
        chrome.close()


@pytest.fixture
def report(
    write_profiles: WriteProfiles, llama_think: LlamaServer, tmp_path: Path
) -> Iterator[Path]:
    """The report of a real run: llama-server and the mock server, at concurrency 1 and 2."""
    with MockServerThread(MockConfig(ttft=0.02, itl=0.003)) as mock:
        write_profiles(
            f'[profiles.tiny]\nbase_url = "{llama_think.base_url}"\ndialect = "llamacpp"\n'
            + zen_mock_profile(mock.base_url)
        )
        path = tmp_path / "report.html"
        result = CliRunner().invoke(
            app,
            ["bench", "-p", "tiny", "-p", "mock", "--concurrency", "1,2", "--requests", "6",
             "--max-tokens", "12", "--out", str(tmp_path / "r.json"), "--html", str(path)],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
    yield path


def line_pixels(png: bytes, colour: str, tolerance: int = 30) -> int:
    """Pixels of the image within ``tolerance`` (per channel) of ``colour`` (#rrggbb) and
    as saturated as a line's middle: the grey edges of anti-aliased text never count."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(-1, 3).astype(np.int16)
    near = np.all(np.abs(pixels - target) <= tolerance, axis=1)
    saturated = pixels.max(axis=1) - pixels.min(axis=1) >= 50
    return int((near & saturated).sum())


CHART_BOXES = """JSON.stringify([...document.querySelectorAll('svg.chart')].map(e => {
  const r = e.getBoundingClientRect();
  return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height,
          caption: e.closest('figure').querySelector('figcaption').textContent};
}))"""


def chart_boxes(chrome: Browser, session: str) -> list[dict[str, Any]]:
    import json

    return list(json.loads(chrome.evaluate(session, CHART_BOXES)))


@pytest.mark.parametrize(
    ("scheme", "media", "width", "background"),
    [
        ("light", "screen", 1200, "rgb(255, 255, 255)"),
        ("dark", "screen", 1200, "rgb(22, 24, 28)"),
        ("light", "screen", 390, "rgb(255, 255, 255)"),
        ("dark", "print", 800, "rgb(255, 255, 255)"),  # paper is white, whatever the screen
    ],
    ids=["light", "dark", "phone", "print"],
)
def test_report_renders_with_every_chart_drawn(
    browser: Browser, report: Path, scheme: str, media: str, width: int, background: str
) -> None:
    session = browser.open(report.as_uri(), width=width, dark=scheme == "dark", media=media)
    assert browser.evaluate(session, "document.title") == "llmcli bench"
    assert (
        browser.evaluate(session, "getComputedStyle(document.body).backgroundColor") == background
    )
    headings = browser.evaluate(
        session, "[...document.querySelectorAll('h2')].map(h => h.textContent)"
    )
    assert headings == ["Side by side", "Verdicts", "Against load", "Latency distributions",
                        "Servers", "Settings", "Formulas"]  # fmt: skip
    # The page never scrolls sideways; a wide table scrolls inside its own box.
    assert browser.evaluate(session, "document.documentElement.scrollWidth") <= width
    boxes = chart_boxes(browser, session)
    assert len(boxes) == CHARTS
    for box in boxes:
        assert box["width"] >= min(300, width - 60), box
        assert box["height"] >= box["width"] * 0.55, box  # drawn at its aspect ratio
        png = browser.screenshot(session, {k: box[k] for k in ("x", "y", "width", "height")})
        for index, name in enumerate(("tiny", "mock")):
            seen = line_pixels(png, PALETTE[index])
            assert seen >= MIN_LINE_PIXELS, (
                f"{box['caption']}: {name}'s line not visible ({seen} px)"
            )
    # Nothing was fetched but the page itself.
    fetched = [
        event["params"]["request"]["url"]
        for event in browser.events
        if event.get("method") == "Network.requestWillBeSent"
    ]
    assert fetched == [report.as_uri()]


class Hits(http.server.BaseHTTPRequestHandler):
    """Serves the page at /report.html and counts every other request (the leaks)."""

    page = b""
    leaks: list[str] = []  # noqa: RUF012  # shared by the handler instances on purpose

    def do_GET(self) -> None:
        if self.path == "/report.html":
            body, kind = self.page, "text/html; charset=utf-8"
        else:
            self.leaks.append(self.path)
            body, kind = b"", "image/png"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("with_policy", [True, False], ids=["policy", "control-without-policy"])
def test_the_policy_stops_every_fetch(browser: Browser, with_policy: bool) -> None:
    text = page(make_run(profile("a", 0.1), profile("b", 0.2)))
    # What a hostile string could not do (it is escaped), done here on purpose: elements
    # that fetch, as if they had got in.
    text = text.replace(
        "<body>",
        '<body><img src="/leak.png"><link rel="stylesheet" href="/leak.css">'
        '<div style="background:url(/leak-bg.png);width:9px;height:9px"></div>',
    )
    if not with_policy:
        text = text.replace(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', "")
        assert "Content-Security-Policy" not in text

    class Handler(Hits):
        page = text.encode()
        leaks: list[str] = []  # noqa: RUF012

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = browser.open(f"http://127.0.0.1:{server.server_port}/report.html")
        assert browser.evaluate(session, "document.querySelectorAll('svg.chart').length") == CHARTS
    finally:
        server.shutdown()
        server.server_close()
    leaks = sorted(set(Handler.leaks) - {"/favicon.ico"})  # the browser's own, not the page's
    if with_policy:
        assert leaks == []
    else:
        assert leaks == ["/leak-bg.png", "/leak.css", "/leak.png"]
