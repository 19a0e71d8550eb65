"""The trainer's data path: shard lists, aligned crops, variants, bad samples, mixing, balancing,
holdout, exact stream resume and s3:// streaming."""
from __future__ import annotations

import collections
import itertools
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from train_shardkit import png, write_dataset

from pairforge.train.config import DataConfig, ValConfig
from pairforge.train.data import PairStream, StreamPositions, load_val_pairs
from pairforge.train.mixing import MixSchedule
from pairforge.train.pairs import augment_pair, decode_pair, paired_random_crop
from pairforge.train.shardlist import resolve_shards


def data_cfg(datasets, **kw) -> DataConfig:
    base = dict(patch_size=16, batch_size=8, num_workers=0, shuffle_buffer=32, shuffle_initial=8)
    base.update(kw)
    return DataConfig(datasets=datasets, **base)


# ---------------------------------------------------------------------------------------------- shards
def test_a_folder_layout_dataset_is_refused_with_the_reason(tmp_path):
    from pairforge.io.dataset import DatasetWriter
    from pairforge.io.storage import LocalStorage

    with DatasetWriter(LocalStorage(tmp_path), layout="folder").open_shard(0, 0, 1) as w:
        w.write({"__key__": "0000000000", "hq.png": png(np.zeros((8, 8, 3), np.uint8)),
                 "lq.png": png(np.zeros((4, 4, 3), np.uint8)), "json": b"{}"})
        w.commit()
    with pytest.raises(ValueError, match="folder-layout dataset"):
        resolve_shards(str(tmp_path))


def test_resolve_shards_all_forms(small_sr, tmp_path):
    from_dir = resolve_shards(str(small_sr))
    assert len(from_dir) == 4 and all(u.endswith(".tar") for u in from_dir)
    assert resolve_shards(str(small_sr / "index.json")) == from_dir
    assert resolve_shards(str(small_sr) + "/shards/shard-{000000..000003}.tar") == from_dir
    assert resolve_shards(str(small_sr), ":-1") == from_dir[:-1]
    assert resolve_shards(str(small_sr), "-1:") == from_dir[-1:]
    # a run directory without index.json: only shards with a commit marker count
    no_index = write_dataset(tmp_path / "noidx", 24, size=32, per_shard=12, write_index=False)
    (no_index / "shards" / "shard-000001.json").unlink()
    assert [u.rsplit("/", 1)[1] for u in resolve_shards(str(no_index))] == ["shard-000000.tar"]
    with pytest.raises(FileNotFoundError):
        resolve_shards(str(tmp_path / "missing"))
    # ... and whose tar still has the recorded size (a truncated copy is not a committed shard)
    no_index2 = write_dataset(tmp_path / "noidx2", 24, size=32, per_shard=12, write_index=False)
    tar = no_index2 / "shards" / "shard-000000.tar"
    tar.write_bytes(tar.read_bytes()[:-1024])
    assert [u.rsplit("/", 1)[1] for u in resolve_shards(str(no_index2))] == ["shard-000001.tar"]
    with pytest.raises(ValueError, match="no shards"):
        resolve_shards(str(small_sr), "10:")


# ------------------------------------------------------------------------------------- crops, variants
def test_paired_crop_and_augment_stay_aligned():
    rng = np.random.default_rng(0)
    for scale in (1, 2, 4):
        hq = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
        # LQ = exact s x s block mean, so an aligned HQ crop area-downsampled must equal the LQ crop
        lq = hq.reshape(64 // scale, scale, 48 // scale, scale, 3).mean(axis=(1, 3))
        for seed in range(20):
            r = np.random.default_rng(seed)
            hc, lc = paired_random_crop(hq, lq, 16, scale, r)
            hc, lc = augment_pair(hc, lc, r)
            assert hc.shape == (16, 16, 3) and lc.shape == (16 // scale, 16 // scale, 3)
            down = hc.astype(np.float64).reshape(16 // scale, scale, 16 // scale, scale, 3).mean(axis=(1, 3))
            np.testing.assert_allclose(down, lc)


def test_crop_pads_images_smaller_than_the_patch():
    hq = np.full((10, 12, 3), 7, np.uint8)
    lq = np.full((5, 6, 3), 9, np.uint8)
    hc, lc = paired_random_crop(hq, lq, 16, 2, np.random.default_rng(0))
    assert hc.shape == (16, 16, 3) and lc.shape == (8, 8, 3)
    assert (hc == 7).all() and (lc == 9).all()


def test_lq_variant_choice():
    hq = np.zeros((8, 8, 3), np.uint8)
    sample = {"__key__": "0000000001", "hq.png": png(hq)}
    for k in range(3):
        sample[f"lq_{k}.png"] = png(np.full((8, 8, 3), 10 * (k + 1), np.uint8))
    rng = np.random.default_rng(0)
    seen = collections.Counter()
    for _ in range(300):
        _, lq, k = decode_pair(sample, rng, "random")
        assert lq[0, 0, 0] == 10 * (k + 1)
        seen[k] += 1
    assert set(seen) == {0, 1, 2} and min(seen.values()) > 60
    assert decode_pair(sample, rng, "first")[2] == 0


# --------------------------------------------------------------------------------------- bad samples
def test_bad_samples_are_counted_and_skipped(tmp_path, caplog):
    ds = write_dataset(tmp_path / "bad", 24, size=32, corrupt=(2, 5), per_shard=24)
    stream = PairStream(data_cfg([{"name": "d", "url": str(ds)}], shuffle_buffer=1), scale=2)
    batches = list(itertools.islice(iter(stream), 3))  # one unshuffled pass over the 24 (+2 replacements)
    assert all(b["hq"].shape == (8, 3, 16, 16) for b in batches)
    assert batches[-1]["_errors"] == {"undecodable": 2}
    assert "undecodable" in caplog.text
    # a dataset where everything is broken fails loudly instead of spinning
    broken = write_dataset(tmp_path / "broken", 12, size=32, corrupt=tuple(range(12)))
    with pytest.raises(RuntimeError, match="unusable"):
        next(iter(PairStream(data_cfg([{"name": "d", "url": str(broken)}], batch_size=64), scale=2)))


def test_lq_upsample_feeds_scale_one_models(small_sr):
    stream = PairStream(data_cfg([{"name": "d", "url": str(small_sr)}], lq_upsample=True), scale=1)
    b = next(iter(stream))
    assert b["hq"].shape == b["lq"].shape == (8, 3, 16, 16)


def test_scale_mismatch_is_reported(small_sr):
    stream = PairStream(data_cfg([{"name": "d", "url": str(small_sr)}], batch_size=64), scale=4)
    with pytest.raises(RuntimeError, match="scale_mismatch"):
        next(iter(stream))


# -------------------------------------------------------------------------------- mixing, balancing
@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    syn = write_dataset(root / "syn", 24, size=32, seed=1, types={"synthetic": 1}, per_shard=12)
    real = write_dataset(root / "real", 24, size=32, seed=2, types={"real": 1}, per_shard=12, start_index=1000)
    return syn, real


def test_mixing_weights_are_honoured(two_sources):
    syn, real = two_sources
    cfg = data_cfg([{"name": "synthetic", "url": str(syn), "weight": 8}, {"name": "real", "url": str(real), "weight": 2}],
                   batch_size=16)
    counts = collections.Counter()
    for b in itertools.islice(iter(PairStream(cfg, scale=2)), 60):  # 960 samples
        # the reported dataset is where the pixels really came from (the metadata type says so)
        assert [("synthetic", "real")[i] for i in b["dataset"].tolist()] == b["types"]
        counts.update(b["types"])
    frac = counts["synthetic"] / sum(counts.values())
    assert abs(frac - 0.8) < 0.04, counts  # binomial sd is 0.013


def test_mixing_schedule_stages(two_sources):
    syn, real = two_sources
    cfg = data_cfg([{"name": "synthetic", "url": str(syn)}, {"name": "real", "url": str(real)}],
                   stages=[{"until_step": 10, "weights": {"synthetic": 1}},
                           {"weights": {"synthetic": 0.5, "real": 0.5}}])
    sched = MixSchedule.from_config(cfg)
    np.testing.assert_allclose(sched.weights_at(9), [1, 0])
    np.testing.assert_allclose(sched.weights_at(10), [0.5, 0.5])
    rng = np.random.default_rng(0)
    draws = np.concatenate([sched.choose(100, rng, 1000) for _ in range(10)])
    assert abs(draws.mean() - 0.5) < 0.02
    before, after = collections.Counter(), collections.Counter()
    for b in itertools.islice(iter(PairStream(cfg, scale=2)), 30):
        (before if b["_step"] < 10 else after).update(b["types"])
    assert set(before) == {"synthetic"}
    assert after["real"] > 50 and after["synthetic"] > 50


def test_mixing_config_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown dataset"):
        data_cfg([{"name": "a", "url": "x"}], stages=[{"weights": {"b": 1}}])
    with pytest.raises(ValidationError, match="until_step"):
        data_cfg([{"name": "a", "url": "x"}], stages=[{"weights": {"a": 1}}, {"weights": {"a": 1}}])


def test_balancing_by_degradation_type(tmp_path):
    ds = write_dataset(tmp_path / "skewed", 120, size=16, seed=4, types={"blur": 0.7, "noise": 0.2, "jpeg": 0.1},
                       per_shard=40)
    plain, balanced = collections.Counter(), collections.Counter()
    for counter, balance in ((plain, None), (balanced, {"buffer_per_type": 16})):
        cfg = data_cfg([{"name": "d", "url": str(ds), "balance": balance}], batch_size=20, patch_size=8)
        for b in itertools.islice(iter(PairStream(cfg, scale=2)), 30):
            counter.update(b["types"])
    assert plain["blur"] / 600 > 0.55
    for t in ("blur", "noise", "jpeg"):
        assert abs(balanced[t] / 600 - 1 / 3) < 0.06, balanced
    # explicit weights
    cfg = data_cfg([{"name": "d", "url": str(ds), "balance": {"weights": {"jpeg": 1, "noise": 1}}}],
                   batch_size=20, patch_size=8)
    types = collections.Counter(t for b in itertools.islice(iter(PairStream(cfg, scale=2)), 10) for t in b["types"])
    assert set(types) == {"jpeg", "noise"}


def test_holdout_split(small_sr):
    cfg = data_cfg([{"name": "d", "url": str(small_sr), "holdout_every": 4}], batch_size=16)
    keys_seen = set()
    for b in itertools.islice(iter(PairStream(cfg, scale=2)), 10):
        assert b["hq"].shape[0] == 16
    # the raw stream under the training loader never yields held-out keys
    from pairforge.train.streams import ErrorCounter, raw_samples

    urls = resolve_shards(str(small_sr))
    for s in itertools.islice(raw_samples(urls, seed=0, stream_id=0, errors=ErrorCounter(), holdout_every=4), 200):
        keys_seen.add(int(s["__key__"]))
    assert keys_seen and all(k % 4 for k in keys_seen)
    val = load_val_pairs(ValConfig(url=str(small_sr), holdout_every=4, max_samples=100, crop=None), scale=2)
    assert sorted(int(p.key) for p in val) == list(range(0, 48, 4))
    assert val[0].hq.shape == (32, 32, 3) and val[0].lq.shape == (16, 16, 3)


# ------------------------------------------------------------------------------------- exact resume
def _run_loader(cfg, start_step, positions, n):
    stream = PairStream(cfg, scale=2, seed=5, start_step=start_step, positions=positions)
    loader = DataLoader(stream, batch_size=None, num_workers=cfg.num_workers)
    out, consumed = [], {}
    for b in itertools.islice(loader, n):
        out.append(b)
        consumed[b["_stream"]] = b["_taken"]
    return stream, out, consumed


def test_streams_resume_exactly_with_workers(two_sources):
    syn, real = two_sources
    cfg = data_cfg([{"name": "synthetic", "url": str(syn), "weight": 3},
                    {"name": "real", "url": str(real), "weight": 1, "balance": {}}], num_workers=2)
    stream, full, _ = _run_loader(cfg, 0, None, 9)
    assert [b["_step"] for b in full] == list(range(9))
    _, _, consumed = _run_loader(cfg, 0, None, 5)  # an "interrupted" run that consumed steps 0..4
    pos = stream.positions(consumed)
    pos = StreamPositions.from_dict(json.loads(json.dumps(pos.to_dict())))  # as stored in a checkpoint
    _, resumed, _ = _run_loader(cfg, 5, pos, 4)
    assert [b["_step"] for b in resumed] == [5, 6, 7, 8]
    for a, b in zip(full[5:], resumed):
        assert torch.equal(a["hq"], b["hq"]) and torch.equal(a["lq"], b["lq"])
        assert a["_taken"] == b["_taken"]
    # a changed layout cannot resume exactly: it reseeds (and still serves the right steps)
    cfg1 = cfg.model_copy(update={"num_workers": 0})
    s1 = PairStream(cfg1, scale=2, seed=5, start_step=5, positions=pos)
    assert s1.stream_seed != pos.seed and next(iter(s1))["_step"] == 5


# ------------------------------------------------------------------------------------------------ s3
def test_stream_from_s3(small_sr, monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="pairs")
        for p in sorted(small_sr.rglob("*")):
            if p.is_file():
                s3.upload_file(str(p), "pairs", "run1/" + p.relative_to(small_sr).as_posix())
        urls = resolve_shards("s3://pairs/run1")
        assert urls[0] == "s3://pairs/run1/shards/shard-000000.tar" and len(urls) == 4
        cfg = data_cfg([{"name": "d", "url": "s3://pairs/run1"}])
        batches = list(itertools.islice(iter(PairStream(cfg, scale=2)), 3))
        assert batches[-1]["hq"].shape == (8, 3, 16, 16) and batches[-1]["_errors"] == {}
        val = load_val_pairs(ValConfig(url="s3://pairs/run1/index.json", max_samples=5), scale=2)
        assert len(val) == 5
    finally:
        server.stop()
