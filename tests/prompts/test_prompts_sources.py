"""Template and file prompt sources, the bank's per-index determinism and the prompt stage."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from pairforge.batch import new_batch
from pairforge.io.storage import LocalStorage
from pairforge.prompts.bank import PromptBankMismatch, build_bank, load_or_build_bank
from pairforge.prompts.command import prompts_command
from pairforge.prompts.config import FilePromptsConfig, TemplatePromptsConfig
from pairforge.prompts.files import read_prompt_file
from pairforge.prompts.template import TemplateWriter
from pairforge.stage import RunContext
from pairforge.stages.prompts import PromptStage
from pairforge.synthesis.config import SynthesisSourceConfig


def test_template_is_reproducible_and_weighted():
    cfg = TemplatePromptsConfig(
        templates=["{subject} {setting}, {light}"],
        vocab={"subject": {"a fox": 1.0, "a heron": 1.0, "a dragon": 0.0}, "setting": ["in snow", "by a lake"],
               "light": ["at dawn"]},
    )
    a = [TemplateWriter(cfg, seed=7).prompt(k)[0] for k in range(200)]
    b = [TemplateWriter(cfg, seed=7).prompt(k)[0] for k in range(200)]
    c = [TemplateWriter(cfg, seed=8).prompt(k)[0] for k in range(200)]
    assert a == b and a != c
    assert not any("dragon" in p for p in a)  # weight 0 never drawn
    assert {p.split(" in ")[0].split(" by ")[0] for p in a} == {"a fox", "a heron"}
    assert TemplateWriter(cfg, 0).combinations() == 6


def test_template_config_errors_name_the_slot():
    with pytest.raises(ValidationError, match="weather"):
        TemplatePromptsConfig(templates=["{subject} {weather}"], vocab={"subject": ["x"]})
    with pytest.raises(ValidationError, match="empty"):
        TemplatePromptsConfig(templates=["{subject}"], vocab={"subject": []})


def test_small_vocab_bank_is_capped_and_unique():
    cfg = TemplatePromptsConfig(templates=["{a} {b}"], vocab={"a": ["red", "blue"], "b": ["car", "house", "tree"]})
    bank, dropped = build_bank(cfg, 50, seed=0)
    assert sorted(bank.prompts) == sorted(f"{a} {b}" for a in ("red", "blue") for b in ("car", "house", "tree"))
    assert all(d["rule"] == "exact_duplicate" for d in dropped)
    assert bank.info["requested"] == 50 and bank.info["size"] == 6


def test_prompt_files(tmp_path):
    (tmp_path / "p.txt").write_text("# comment\na castle at dusk\n\n  a quiet lake  \n")
    (tmp_path / "p.jsonl").write_text(json.dumps({"prompt": "one", "x": 1}) + "\n" + json.dumps("two") + "\n")
    pq.write_table(pa.table({"caption": ["p1", None, "p2"]}), tmp_path / "p.parquet")
    assert read_prompt_file(str(tmp_path / "p.txt")) == ["a castle at dusk", "a quiet lake"]
    assert read_prompt_file(str(tmp_path / "p.jsonl")) == ["one", "two"]
    assert read_prompt_file(str(tmp_path / "p.parquet"), field="caption") == ["p1", "p2"]
    (tmp_path / "bad.jsonl").write_text('{"text": "no prompt field"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_prompt_file(str(tmp_path / "bad.jsonl"))


def test_file_source_screens_dedups_and_rejects_past_the_end(tmp_path):
    (tmp_path / "p.txt").write_text(
        "A red barn in the snow.\na red barn in the snow\nportrait of John Smith at his desk\n"
        "a nude beach\na harbor at night\n"
    )
    src = SynthesisSourceConfig.model_validate({
        "prompts": {"kind": "file", "path": str(tmp_path / "p.txt")},
        "model": {"family": "flux", "id": str(tmp_path)},
    })
    ctx = RunContext(seed=0, run_url=str(tmp_path / "run"))
    stage = PromptStage(src, ctx)
    assert stage.needs_calibration
    stage.prepare(None)
    assert stage.bank.prompts == ["A red barn in the snow.", "a harbor at night"]
    dropped = [json.loads(x) for x in (tmp_path / "run/prompts/dropped.jsonl").read_text().splitlines()]
    assert {d["rule"] for d in dropped} == {"exact_duplicate", "named_person", "nsfw"}
    batch = stage(new_batch([0, 1, 2]))
    assert batch["prompt"][:2] == ["A red barn in the snow.", "a harbor at night"]
    assert batch["meta"][1]["source"]["prompt_index"] == 1
    assert batch["reject"][2]["rule"] == "prompts_exhausted"


def test_every_worker_gets_the_same_prompt_per_index(tmp_path):
    src = SynthesisSourceConfig.model_validate({"prompts": {"kind": "template"},
                                                "model": {"family": "flux", "id": str(tmp_path)}})
    ctx = RunContext(seed=11, run_url=str(tmp_path / "run"), num_samples=40)
    driver = PromptStage(src, ctx)
    driver.prepare(None)
    # another worker, a resumed run: a fresh stage reads the persisted bank; batch layout does not matter
    worker = PromptStage(src, RunContext(seed=11, run_url=str(tmp_path / "run"), num_samples=40))
    full = driver(new_batch(list(range(40))))["prompt"]
    parts = [worker(new_batch([i]))["prompt"][0] for i in (39, 3, 17)]
    assert parts == [full[39], full[3], full[17]]
    assert len(set(full)) == 40
    # a different prompts config in the same run directory is refused
    other = SynthesisSourceConfig.model_validate({"prompts": {"kind": "template", "templates": ["{subject}"]},
                                                  "model": {"family": "flux", "id": str(tmp_path)}})
    with pytest.raises(PromptBankMismatch):
        PromptStage(other, ctx).prepare(None)


def test_empty_source_gives_empty_prompts(tmp_path):
    src = SynthesisSourceConfig.model_validate({"model": {"family": "flux", "id": str(tmp_path)}})
    stage = PromptStage(src, RunContext(seed=0))
    assert not stage.needs_calibration
    b = stage(new_batch([5, 6]))
    assert b["prompt"] == ["", ""] and b["meta"][0]["source"]["prompt_source"] == "empty"


def test_prompts_command_writes_files(tmp_path):
    from pairforge.config import parse_config

    cfg = parse_config({"run": {"seed": 3}, "source": {"kind": "synthesis", "prompts": {"kind": "template"},
                                                       "model": {"family": "sdxl", "id": "stabilityai/sdxl"}}})
    info = prompts_command(cfg, 25, tmp_path / "out.txt")
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert len(lines) == 25 == info["size"] and len(set(lines)) == 25
    prompts_command(cfg, 25, tmp_path / "out.jsonl")
    recs = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in recs] == lines and "slots" in recs[0]["origin"]
    with pytest.raises(ValueError, match="empty"):
        prompts_command(parse_config({"source": {"kind": "synthesis", "model": {"family": "flux", "id": "x/y"}}}),
                        3, tmp_path / "e.txt")
