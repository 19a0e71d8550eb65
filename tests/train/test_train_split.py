"""Held-out discipline: splits by source (photo, file, prompt/seed), never by tile; the training
streams skip held-out sources, validation uses only them, the checkpoint records the split. Also the
trainer's thread budget and the checkpoint/metrics files a kill can leave behind."""
from __future__ import annotations

import json

import pytest
import torch
from train_shardkit import write_dataset

from pairforge.train.checkpoint import find_latest, save_checkpoint
from pairforge.train.config import SplitConfig, TrainConfig, ValConfig
from pairforge.train.data import load_val_pairs
from pairforge.train.metrics import CSVLog
from pairforge.train.shardlist import resolve_shards
from pairforge.train.split import Splitter, source_group
from pairforge.train.streams import ErrorCounter, raw_samples
from pairforge.train.threads import apply_threads, auto_threads


def test_source_groups_name_the_photo_file_or_prompt():
    assert source_group({"source": {"kind": "bundled", "photo": "coffee", "crop": [0, 96, 192, 192]}}) == "bundled:coffee"
    assert source_group({"source": {"kind": "files", "path": "/d/a.jpg", "tile": 3}}) == "files:/d/a.jpg"
    syn = {"source": {"kind": "synthesis", "prompt": " a red barn ", "model": "m"}, "synthesis": {"seed": 7}}
    assert source_group(syn) == "prompt:a red barn"  # every seed of one prompt in one group
    assert source_group({"source": {"kind": "synthesis", "prompt": ""}, "synthesis": {"seed": 7}}) == "seed:7"
    assert source_group({}, "0000000042") == "key:0000000042"


def test_split_by_name_or_by_hashed_fraction_is_stable():
    s = Splitter(SplitConfig(held_out=["coffee"]))
    assert s.held_out({"source": {"kind": "bundled", "photo": "coffee"}})
    assert not s.held_out({"source": {"kind": "bundled", "photo": "chelsea"}})
    h = Splitter(SplitConfig(fraction=0.25, seed=3))
    groups = [f"files:/p/{i}.jpg" for i in range(2000)]
    held = [g for g in groups if h.held_out_group(g)]
    assert 0.2 < len(held) / len(groups) < 0.3
    assert held == [g for g in groups if Splitter(SplitConfig(fraction=0.25, seed=3)).held_out_group(g)]
    assert held != [g for g in groups if Splitter(SplitConfig(fraction=0.25, seed=4)).held_out_group(g)]
    with pytest.raises(ValueError, match="held_out"):
        SplitConfig(held_out=[])


def test_training_streams_skip_held_out_sources_and_validation_uses_only_them(tmp_path):
    ds = write_dataset(tmp_path / "ds", 40, size=32, scale=2, per_shard=10, seed=9)
    split = SplitConfig(held_out=["coffee", "astronaut"])
    splitter = Splitter(split)
    urls = resolve_shards(str(ds))
    train = raw_samples(urls, seed=0, stream_id=0, errors=ErrorCounter(), resampled=False,
                        select=splitter.raw_predicate(keep_held_out=False))
    seen = [source_group(json.loads(s["json"])) for s in train]
    val = load_val_pairs(ValConfig(url=str(ds), max_samples=100, crop=None), 2, split=split)
    assert seen and not {"bundled:coffee", "bundled:astronaut"} & set(seen)
    assert val and {p.group for p in val} <= {"bundled:coffee", "bundled:astronaut"}
    assert len(seen) + len(val) == 40  # a partition: nothing lost, nothing in both
    with pytest.raises(ValueError, match="held-out sources"):
        load_val_pairs(ValConfig(url=str(ds), max_samples=4), 2, split=SplitConfig(held_out=["no-such-photo"]))


def test_split_is_part_of_the_train_config():
    cfg = TrainConfig.model_validate({
        "model": {"kind": "nafnet"}, "output": {"dir": "x"},
        "data": {"datasets": [{"name": "a", "url": "x"}]},
        "split": {"by": "source", "held_out": ["coffee"]}})
    assert cfg.model_dump(mode="json")["split"] == {"by": "source", "held_out": ["coffee"], "fraction": 0.1, "seed": 0}
    with pytest.raises(Exception, match="by"):
        TrainConfig.model_validate({"model": {"kind": "nafnet"}, "output": {"dir": "x"},
                                    "data": {"datasets": [{"name": "a", "url": "x"}]}, "split": {"by": "tile"}})


# ------------------------------------------------------------------------------------------ threads
def test_auto_threads_leave_a_core_per_data_worker_and_share_between_ranks():
    assert auto_threads(1, 1, cpus=2) == 1  # the quickstart on a 2-core machine
    assert auto_threads(1, 0, cpus=2) == 2
    assert auto_threads(1, 2, cpus=8) == 6
    assert auto_threads(8, 2, cpus=16) == 1  # never 0
    assert auto_threads(2, 0, cpus=2) == 1  # two DDP ranks on two cores
    before = torch.get_num_threads()
    try:
        assert apply_threads(1, torch.device("cpu")) == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(Exception, match="threads"):
        TrainConfig.model_validate({"model": {"kind": "nafnet"}, "output": {"dir": "x"},
                                    "data": {"datasets": [{"name": "a", "url": "x"}]}, "train": {"threads": 0}})


# ---------------------------------------------------------------------------- what a kill leaves
def test_resume_takes_the_newest_complete_checkpoint_when_latest_json_lags(tmp_path):
    d = tmp_path / "checkpoints"
    save_checkpoint(d, 5, {"x": torch.ones(1)}, keep=3)
    save_checkpoint(d, 10, {"x": torch.ones(1)}, keep=3)
    # a kill after ckpt-10 was renamed into place but before latest.json was rewritten
    (d / "latest.json").write_text(json.dumps({"step": 5, "file": "ckpt-00000005.pt"}))
    assert find_latest(d).name == "ckpt-00000010.pt"


def test_a_metrics_row_cut_short_by_a_kill_is_dropped_on_resume(tmp_path):
    log = CSVLog(tmp_path / "metrics.csv")
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 0.5})
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("1")  # the start of step 12's row: its step would read as 1
    CSVLog(tmp_path / "metrics.csv").truncate_after(3)
    assert [r["step"] for r in CSVLog(tmp_path / "metrics.csv").read()] == ["1", "2", "3"]
