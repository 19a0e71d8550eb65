"""The run report in a real browser: headless Chromium (Debian's ``chromium``; `.ci/run` installs it) opens
report.html of a demo-sized run with the network blocked, and every chart and picture must render with
no console error and no request leaving the file.

Set PAIRFORGE_REPORT_SHOTS=DIR to keep the screenshots (top, degradations, gallery) in DIR."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from report_data import remote_references

from pairforge.config import load_config
from pairforge.pipeline.runner import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PAIRFORGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _browser_or_skip() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"headless Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run installs it): "
                    "the report was NOT checked in a browser")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The quickstart config on 96 inputs, in this process (no Ray): filters reject some, chain degrades."""
    out = tmp_path_factory.mktemp("browser") / "quickstart"
    summary = run_pipeline(load_config(str(ROOT / "configs/quickstart.yaml")), str(out), limit=96, executor="local")
    return out, summary


def test_run_writes_report_and_card(demo_run):
    out, summary = demo_run
    assert summary.report == str(out / "report.html") and summary.card == str(out / "README.md")
    html = (out / "report.html").read_text()
    assert "iqa/piqe" in html and "realesrgan" in html and 'alt="rejected ' in html
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n")
    assert remote_references(html) == [] and remote_references(card) == []


def test_run_without_report(tmp_path):
    cfg = load_config(str(ROOT / "configs/quickstart.yaml"), ["output.report=false", "filters=[]"])
    summary = run_pipeline(cfg, str(tmp_path / "o"), limit=2, executor="local")
    assert summary.report is None and not (tmp_path / "o" / "report.html").exists()
    assert not (tmp_path / "o" / "README.md").exists()


@pytest.mark.slow
def test_report_renders_in_headless_chromium_offline(demo_run, tmp_path):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    out, _ = demo_run
    shots = Path(os.environ.get("PAIRFORGE_REPORT_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    attempted: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            attempted.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((out / "report.html").as_uri(), wait_until="load")
            page.screenshot(path=str(shots / "report-top.png"))
            for section in ("degradations", "gallery"):
                page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
                page.screenshot(path=str(shots / f"report-{section}.png"))
            images = page.evaluate(
                "Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))")
            text = page.inner_text("body")
        finally:
            browser.close()
    assert (shots / "report-top.png").stat().st_size > 10_000
    broken = [i["alt"] for i in images if not i["ok"]]
    assert len(images) >= 15 and broken == []
    kinds = {i["alt"].split(" ")[0] for i in images}
    assert {"HQ", "LQ", "rejected", "PSNR"} <= kinds  # gallery, rejected thumbnails, charts
    assert attempted == [] and errors == []
    assert "Accounting" in text and "Rejected inputs" in text


def test_resume_adds_a_session_the_report_shows(tmp_path):
    cfg = load_config(str(ROOT / "configs/quickstart.yaml"), ["filters=[]", "output.samples_per_shard=2"])
    out = tmp_path / "o"
    run_pipeline(cfg, str(out), limit=2, executor="local")
    (out / "shards" / "shard-000000.json").unlink()  # as if killed before the commit
    s = run_pipeline(cfg, str(out), limit=2, executor="local")
    run = json.loads((out / "run.json").read_text())
    assert [x["shards_written"] for x in run["sessions"]] == [1, 1] and len(run["resumes"]) == 1
    html = (out / "report.html").read_text()
    assert s.report and html.count("<th>resumed</th>") == 1 and "Sessions (first run and resumes)" in html
