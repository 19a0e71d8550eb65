"""The run report (report.html) and the dataset card (README.md): contents from a synthetic run written
through the real writer, rejected-input thumbnails in the commit records, the CLI command, the card's
front matter read back by `datasets`, and no remote resource anywhere."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import yaml
from report_data import remote_references, write_synthetic_run

from pairforge.batch import Rejection, new_batch, reject
from pairforge.io.dataset import DatasetWriter, read_record, record_name
from pairforge.io.storage import LocalStorage
from pairforge.io.thumbnails import (
    RECORD_FIELD,
    THUMB_SIDE,
    make_thumbnail,
    select_thumbnails,
)
from pairforge.pipeline.shardwork import run_stage
from pairforge.runreport import render_card, render_report, write_report_and_card
from pairforge.runreport.card import size_category
from pairforge.runreport.collect import STACKED, Reservoir, collect


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("rep") / "run", n=96, per_shard=32)


def test_thumbnail_is_small_and_keeps_aspect():
    t = make_thumbnail(np.zeros((300, 150, 3), np.uint8))
    assert t.shape == (THUMB_SIDE, THUMB_SIDE // 2, 3) and t.dtype == np.uint8
    assert make_thumbnail(np.zeros((20, 10), np.float32)).shape == (20, 10, 3)  # small gray float: converted, not enlarged
    assert make_thumbnail(None) is None and make_thumbnail(np.zeros((0, 3, 3))) is None


def test_select_thumbnails_bounds_per_reason():
    rejected = [{"key": f"k{i}", "stage": "iqa", "rule": "piqe" if i < 5 else "musiq"} for i in range(7)]
    thumbs = {r["key"]: np.full((8, 8, 3), 100, np.uint8) for r in rejected}
    got = select_thumbnails(rejected, thumbs, per_reason=2)
    assert sorted(got) == ["k0", "k1", "k5", "k6"]
    assert base64.b64decode(got["k0"])[:2] == b"\xff\xd8"  # a JPEG
    assert select_thumbnails(rejected, thumbs, per_reason=0) == {}


def test_stage_rejections_keep_the_judged_image_as_a_thumbnail():
    """The shard worker keeps a tiny copy of what a stage rejected, although the stage frees its pixels."""

    class RejectOdd:
        name = "odd"
        config = None
        concurrent_calls = False

        class resources:
            batch_size = 2

        def __call__(self, batch):
            for r, i in enumerate(batch["index"]):
                if i % 2:
                    reject(batch, r, Rejection("odd", "odd", "odd index", i))
            return batch

    batch = new_batch([0, 1, 2, 3, 4])
    batch["hq"] = [np.full((200, 100, 3), i * 10, np.uint8) for i in range(5)]
    batch = run_stage(RejectOdd(), batch)
    assert [t is not None for t in batch["thumb"]] == [False, True, False, True, False]
    assert batch["hq"][1] is None and batch["thumb"][3].shape == (THUMB_SIDE, THUMB_SIDE // 2, 3)
    assert int(batch["thumb"][3].mean()) == 30


def test_records_hold_a_bounded_number_of_thumbnails_per_reason(tmp_path):
    storage = LocalStorage(tmp_path)
    batch = new_batch(list(range(6)))
    batch["thumb"] = [np.full((8, 8, 3), i, np.uint8) for i in range(6)]
    for r in range(6):
        batch["reject"][r] = {"stage": "iqa", "rule": "piqe" if r < 4 else "musiq", "reason": "low", "value": 60.0}
    DatasetWriter(storage, rejected_thumbnails=3).write_batch(0, 0, 6, batch)
    rec, why = read_record(storage, record_name(0))
    assert why is None and sorted(rec[RECORD_FIELD]) == ["0000000000", "0000000001", "0000000002", "0000000004", "0000000005"]
    DatasetWriter(storage, rejected_thumbnails=0).write_batch(0, 0, 6, batch)
    assert RECORD_FIELD not in read_record(storage, record_name(0))[0]


def test_reservoir_is_bounded_and_exact_in_counts():
    r = Reservoir(k=10, seed=0)
    for x in range(1000):
        r.add(float(x))
    assert len(r.values) == 10 and r.n == 1000 and (r.min, r.max) == (0.0, 999.0)
    assert len(set(r.values)) == 10 and max(r.values) > 100  # drawn from the whole stream, not its head


def test_collect_aggregates_records_and_metadata(synthetic):
    data = collect(LocalStorage(synthetic))
    index = json.loads((synthetic / "index.json").read_text())
    assert data.accepted == index["total_samples"] and data.inputs == 96
    assert data.rejected == index["rejected"] and data.rejected["dedup/near_duplicate"] == 3
    ms = data.metrics[("iqa", "piqe")]
    assert ms.threshold == 50.0 and ms.accepted.n == data.accepted and ms.rejected.n == data.rejected["iqa/piqe"]
    assert data.metrics[("sanity", "luma_std")].threshold == 6.0  # the config's min_std
    assert data.dedup["dedup"]["clusters"] == 3
    assert set(data.by_group) == {"realesrgan", "blur", "noise", "haze", STACKED}
    stacked = {k: v for k, v in data.by_label.items() if "+" in k}
    assert stacked and sum(stacked.values()) == data.by_group[STACKED]
    assert data.by_type["noise"] == data.by_label.get("noise", 0) + sum(v for k, v in stacked.items() if "noise" in k)
    assert set(data.by_severity["haze"]) <= {"light", "medium", "heavy"}
    assert data.strength_source["blur"] == "recorded" and "realesrgan" in data.strength_picks
    assert {"blur1 sigma", "gaussian1 sigma", "jpeg1 quality"} <= set(data.chain_params)
    assert "blur2 sigma" not in data.chain_params  # not applied
    assert 0 < data.prompts.n <= 32 and data.prompt_sources == {"template": data.prompts.n}
    assert sum(r.n for r in data.rejected_thumbs.values()) == sum(len(json.loads(p.read_text()).get(RECORD_FIELD, {}))
                                                                   for p in (synthetic / "shards").glob("*.json"))
    assert data.run["sessions"][0]["accepted"] == data.accepted


def test_report_shows_every_section_self_contained(synthetic):
    html = render_report(LocalStorage(synthetic))
    for anchor in ("run", "accounting", "filters", "degradations", "gallery", "rejected", "prompts", "sources"):
        assert f'id="{anchor}"' in html
    for text in ("iqa/piqe", "dedup/near_duplicate", "duplicate clusters", "PSNR", "jpeg1 quality", "a photo of object",
                 "measured on a sample", "recorded", "Time by stage", "wall time"):
        assert text in html, text
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(srcs) >= 15 and all(s.startswith("data:image/") for s in srcs)
    # gallery: 4 pairs per group (4 types + stacked), rejected thumbnails per reason
    assert html.count('class="pair"') == 20 and html.count('class="thumb"') >= 4
    assert remote_references(html) == [] and "<script" not in html


def test_card_front_matter_and_prose(synthetic):
    text = render_card(LocalStorage(synthetic))
    assert text.startswith("---\n")
    fm = yaml.safe_load(text.split("---\n")[1])
    assert fm["license"] == "cc-by-4.0" and fm["task_categories"] == ["image-to-image"] and fm["size_categories"] == ["n<1K"]
    assert fm["configs"][0]["data_files"] == [{"split": "train", "path": "shards/*.tar"}]
    for text_part in ("## Sources", "## Filters", "## Degradation model", "## Counts", "## Loading", "## Provenance",
                      "import webdataset", "load_dataset", "ray.data.read_webdataset", "shards/shard-{000000..000002}.tar",
                      "report.html", "dedup/near_duplicate"):
        assert text_part in text, text_part
    assert remote_references(text) == []


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 123_456, 5 * 10**9)] == ["n<1K", "n<1K", "1K<n<10K", "100K<n<1M", "n>1B"]


def test_card_configs_entry_loads_in_hf_datasets(synthetic, tmp_path):
    """`datasets.load_dataset(DIR)` reads the card's configs entry and the shards with the webdataset builder."""
    datasets = pytest.importorskip("datasets")
    write_report_and_card(LocalStorage(synthetic))
    ds = datasets.load_dataset(str(synthetic), split="train", cache_dir=str(tmp_path / "hf"))
    index = json.loads((synthetic / "index.json").read_text())
    assert len(ds) == index["total_samples"] and {"hq.png", "lq.png", "json"} <= set(ds.column_names)


def test_report_command_writes_into_dir_or_out(synthetic, tmp_path):
    from typer.testing import CliRunner

    from pairforge.cli import app

    r = CliRunner().invoke(app, ["report", str(synthetic), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    r = CliRunner().invoke(app, ["report", str(synthetic)])
    assert r.exit_code == 0, r.output
    assert (synthetic / "report.html").exists() and (synthetic / "README.md").exists()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "not a pairforge dataset" in r.output


def test_report_reads_unknown_metadata_shapes(tmp_path):
    """Metadata from other degraders or older runs (missing sections, strange shapes) never breaks the report."""
    storage = LocalStorage(tmp_path)
    batch = new_batch([0, 1, 2])
    batch["hq"] = [np.full((16, 16, 3), 90, np.uint8)] * 3
    batch["lq"] = [np.full((8, 8, 3), 90, np.uint8)] * 3
    batch["meta"] = [{"degradation": {"mixture": {"chain": "bsrgan", "ops": "?"}}, "filters": {"x": 3}},
                     {"degradation": [{"kind": "custom"}, None], "source": "?"},
                     {"degradation": 7, "filters": {"iqa": {"m": {"score": "nan"}}}}]
    batch["lq"][1] = [batch["lq"][1], batch["lq"][1]]
    DatasetWriter(storage).write_batch(0, 0, 3, batch)
    html = render_report(storage)
    assert "bsrgan" in html and "custom" in html and 'id="gallery"' in html
    assert collect(storage).lq_sizes == {"8x8": 4}  # every LQ variant counted
    assert render_card(storage).startswith("---\n")


def test_judge_verdicts_cost_keep_top_and_prompt_bank(tmp_path):
    """A judge's verdict counts and cost (its usage files), a keep_top percentile and the prompt bank's stats."""
    from pairforge.llm.usage import UsageLog

    storage = LocalStorage(tmp_path)
    config = {"run": {"name": "judged"}, "filters": [{"kind": "iqa", "name": "iqa"}, {"kind": "judge", "name": "judge"}],
              "source": {"kind": "synthesis"}, "degrade": {"kind": "simple"}, "output": {}}
    storage.write_bytes("run.json", json.dumps({"config": config, "plan": {"shards": 1}}).encode())
    storage.write_bytes("prompts/bank.json", json.dumps({"kind": "template", "size": 40, "dropped": {"privacy": 2}}).encode())
    log = UsageLog(storage, "judge")
    for attempt, (ok, cost) in enumerate([(False, 0.0), (True, 0.0123)]):  # one call, retried once
        log.end(log.begin(log.new_call() if attempt == 0 else "c", attempt, "test", "m"), ok, cost_usd=cost)
    log.close()
    batch = new_batch([0, 1, 2, 3])
    batch["hq"] = [np.full((16, 16, 3), 90, np.uint8)] * 4
    batch["lq"] = [np.full((4, 4, 3), 90, np.uint8)] * 4
    judged = {"passed": True, "categories": [], "usage": {"requests": 1}}
    for r in range(4):
        batch["meta"][r] = {"source": {"kind": "synthesis", "prompt_source": "template", "prompt": f"prompt {r}"},
                            "filters": {"iqa": {"musiq": {"score": 50.0 + r, "threshold": 51.5, "rule": "keep_top", "keep_top": 0.5,
                                                          "lower_better": False}}, "judge": judged},
                            "degradation": {"chain": "simple", "scale": 4}}
    batch["reject"][3] = {"stage": "judge", "rule": "unsafe", "reason": "unsafe content", "value": ["unsafe"]}
    DatasetWriter(storage).write_batch(0, 0, 4, batch)
    data = collect(storage)
    assert data.judge_verdicts["judge"] == {"passed": 3, "rejected: unsafe": 1}
    assert data.judge_cost["judge"]["cost_usd"] == 0.0123 and data.judge_cost["judge"]["requests"] == 2
    html = render_report(storage, data)
    assert "keep top 50% → 51.5" in html or "keep top 50% \u2192 51.5" in html
    assert "rejected: unsafe" in html and "0.0123" in html and "prompt 2" in html and "privacy" in html


def test_folder_layout_report_and_card(tmp_path):
    """A folder-layout run: the same report; the card has no configs entry (the hub cannot pair its files)."""
    out = write_synthetic_run(tmp_path / "run", n=40, per_shard=20, layout="folder")
    html = render_report(LocalStorage(out))
    assert html.count('class="pair"') >= 8 and "folder" in html
    card = render_card(LocalStorage(out))
    fm = yaml.safe_load(card.split("---\n")[1])
    assert "configs" not in fm and "folder layout" in card


def _svg(uri: str):
    import xml.etree.ElementTree as ET

    assert uri.startswith("data:image/svg+xml;base64,")
    doc = base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")
    root = ET.fromstring(doc)  # well-formed XML, whatever the labels hold
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    return root, texts


def test_charts_are_well_formed_svg_with_their_labels_and_escaped_text():
    from pairforge.runreport import plots

    _, texts = _svg(plots.barh({"a<b & c": 3, "accepted": 10}, 'Inputs "by" outcome', xlabel="inputs", total=13))
    assert {"a<b & c", "accepted", 'Inputs "by" outcome', "inputs", "10  (76.9%)", "3  (23.1%)"} <= set(texts)
    root, texts = _svg(plots.histogram([1.0, 2.0, 2.5], [7.0], "iqa · piqe", 5.0, "threshold 5", xlabel="piqe"))
    assert {"iqa · piqe", "piqe", "samples", "accepted (3)", "rejected (1)", "threshold 5"} <= set(texts)
    assert float(root.get("width")) == pytest.approx(4.6 * 96)
    _, texts = _svg(plots.distributions({"blur": [20.0, 25.0, 30.0, 31.0], "haze": [12.0]}, "PSNR", "PSNR (dB)"))
    assert {"blur (4)", "haze (1)", "PSNR", "PSNR (dB)"} <= set(texts)
    _, texts = _svg(plots.small_histograms({"blur1 sigma": [0.5, 0.5], "jpeg1 quality": [30.0, 95.0]}, "params"))
    assert {"blur1 sigma (2)", "jpeg1 quality (2)", "params"} <= set(texts)
    _, texts = _svg(plots.severity_bars({"blur": {"light": 2, "heavy": 1}, "realesrgan": {"-": 4}}, ("light", "heavy")))
    assert {"light", "heavy", "no severity", "blur", "realesrgan", "3", "4"} <= set(texts)
    # degenerate inputs still draw: nothing at all, or one value
    for uri in (plots.histogram([], [], "empty"), plots.histogram([3.0], [], "one"), plots.barh({"x": 0}, "zero")):
        _svg(uri)


def test_tick_values_are_round_and_labelled_with_the_decimals_they_need():
    from pairforge.runreport.plots import nice_ticks, tick_label

    ticks, step = nice_ticks(0.0, 7.3)
    assert step == 2 and ticks == [0, 2, 4, 6]
    ticks, step = nice_ticks(0.2, 1.45, most=6)
    assert [tick_label(t, step) for t in ticks] == ["0.25", "0.50", "0.75", "1.00", "1.25"]
    assert nice_ticks(0.0, 3.0, integer=True)[1] == 1.0
    assert tick_label(-2.0, 1.0) == "\u22122"


def test_compiled_template_is_cached_and_renders_the_same(synthetic, tmp_path, monkeypatch):
    """The report template's compiled code is kept (jinja2's bytecode cache, keyed by the template's
    checksum) and a report rendered from it is the one rendered from source."""
    import re

    import jinja2

    from pairforge.runreport import page

    def strip_clock(html: str) -> str:  # the generation time and the seconds it took differ between renders
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|\b\d+\.\d s\b", "", html)

    monkeypatch.setattr(page, "_bytecode_cache", lambda: None)
    from_source = render_report(LocalStorage(synthetic))
    monkeypatch.setattr(page, "_bytecode_cache", lambda: jinja2.FileSystemBytecodeCache(str(tmp_path)))
    first = render_report(LocalStorage(synthetic))
    assert len(list(tmp_path.glob("__jinja2_*.cache"))) == 1
    cached = render_report(LocalStorage(synthetic))
    assert strip_clock(first) == strip_clock(from_source) == strip_clock(cached)


def test_a_cache_that_cannot_be_written_costs_only_the_compile(synthetic, tmp_path, monkeypatch):
    """The cache directory removed under the report (a temp cleaner) or unwritable: the report is still
    written, from a fresh compile."""
    import shutil

    from pairforge.runreport import page

    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache = page._BestEffortBytecodeCache(str(cache_dir))
    shutil.rmtree(cache_dir)
    monkeypatch.setattr(page, "_bytecode_cache", lambda: cache)
    html = render_report(LocalStorage(synthetic))
    assert "<html" in html and not cache_dir.exists()
