"""The dataset format (pairforge.io.dataset): both layouts written and read back through one protocol,
LQ variants, commit detection (malformed records, resized / changed data), and `verify`."""
import hashlib
import json
import logging
import os
import tarfile

import numpy as np
import pytest

from pairforge.batch import Rejection, new_batch, reject
from pairforge.io import dataset
from pairforge.io.dataset import (
    DatasetReader,
    DatasetWriter,
    committed_records,
    folder_member,
    folder_path,
    scan_commits,
)
from pairforge.io.images import decode_png
from pairforge.io.storage import LocalStorage, open_storage
from pairforge.io.verify import verify_dataset
from pairforge.train.pairs import decode_pair, degradation_type

LAYOUTS = ["webdataset", "folder"]


def rw_params(t, sev):
    return {"op": t, "severity": sev, "stat": {"psnr": 20.0}}


def make_batch(start: int, n: int, variants: int = 0, seed: int = 0) -> dict:
    """A degraded batch as the pipeline hands it to the writer; row 1 is rejected by a filter."""
    rng = np.random.default_rng(seed)
    b = new_batch(list(range(start, start + n)))
    b["lq"] = [None] * n
    b["prompt"] = [None] * n
    for r in range(n):
        hq = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        b["hq"][r] = hq
        b["meta"][r]["source"] = {"kind": "bundled", "photo": "coffee"}
        if variants:
            b["lq"][r] = [hq[::2, ::2].copy() // (k + 1) for k in range(variants)]
            b["meta"][r]["degradation"] = [
                {"chain": "realworld", "type": t, "types": [t], "ops": [rw_params(t, "heavy")], "strength": {"psnr": 10.0 + k}}
                for k, t in enumerate(["haze", "rain", "noise"][:variants])]
        else:
            b["lq"][r] = hq[::2, ::2].copy()
            b["meta"][r]["degradation"] = {"chain": "realesrgan", "scale": 2, "ops": []}
    reject(b, 1, Rejection("sanity", "flat", "too flat", 1.5))
    return b


@pytest.mark.parametrize("layout", LAYOUTS)
def test_both_layouts_write_and_read_back_the_same_samples(layout, tmp_path):
    st = LocalStorage(tmp_path)
    w = DatasetWriter(st, layout=layout)
    b = make_batch(0, 4)
    b["prompt"][2] = "a cat"
    rec = w.write_batch(0, 0, 4, b, extra={"stage_seconds": {}})
    assert rec["layout"] == layout and rec["accepted"] == ["0000000000", "0000000002", "0000000003"]
    assert rec["rejected_counts"] == {"sanity/flat": 1} and rec["rejected"][0]["index"] == 1
    assert rec["members"] == ["hq.png", "json", "lq.png", "txt"]
    if layout == "folder":
        assert "hq/0000000002.png" in rec["files"] and "prompt/0000000002.txt" in rec["files"]
        for path, fi in rec["file_info"].items():
            data = (tmp_path / path).read_bytes()
            assert fi == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    else:
        assert rec["sha256"] == hashlib.sha256((tmp_path / rec["tar"]).read_bytes()).hexdigest()
    reader = DatasetReader(st)
    samples = list(reader.iter_samples())
    assert [s["__key__"] for s in samples] == rec["accepted"]
    assert samples[1]["txt"] == b"a cat" and "txt" not in samples[0]
    meta = dataset.sample_meta(samples[0])
    assert meta["hq_size"] == [24, 32] and meta["lq_size"] == [12, 16] and "lq_variants" not in meta
    assert np.array_equal(decode_png(samples[0]["hq.png"]), b["hq"][0])
    # metadata only, one key only
    only = list(reader.iter_samples({"json"}))
    assert all(set(s) == {"__key__", "json"} for s in only)
    assert set(reader.find("0000000003")) == {"__key__", "hq.png", "lq.png", "json"}
    assert reader.find("0000000001") is None  # rejected


def test_a_row_that_cannot_be_encoded_is_rejected_not_lost(tmp_path):
    b = make_batch(0, 3)
    b["lq"][2] = None
    rec = DatasetWriter(LocalStorage(tmp_path)).write_batch(0, 0, 3, b)
    assert rec["accepted"] == ["0000000000"] and rec["rejected_counts"] == {"sanity/flat": 1, "writer/encode_error": 1}


def test_writer_refuses_unknown_members_and_leaves_nothing_on_abort(tmp_path):
    st = LocalStorage(tmp_path)
    with pytest.raises(ValueError, match="member 'lq.jpg'"), DatasetWriter(st).open_shard(0, 0, 2) as w:
        w.write({"__key__": "0000000000", "hq.png": b"x", "lq.png": b"y", "json": b"{}"})
        w.write({"__key__": "0000000001", "hq.png": b"x", "lq.jpg": b"y", "json": b"{}"})
    assert [p.name for p in (tmp_path / "shards").iterdir()] == []  # temp tar removed, no record
    with pytest.raises(ValueError, match="needs hq.png"):
        DatasetWriter(st).open_shard(0, 0, 1).write({"__key__": "0000000000", "hq.png": b"x", "json": b"{}"})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lq_variants_are_written_and_read_back(layout, tmp_path):
    st = LocalStorage(tmp_path)
    b = make_batch(0, 3, variants=3)
    rec = DatasetWriter(st, layout=layout).write_batch(0, 0, 3, b)
    assert rec["members"] == ["hq.png", "json", "lq_0.png", "lq_1.png", "lq_2.png"]
    if layout == "folder":
        assert "lq_1/0000000002.png" in rec["files"] and not (tmp_path / "lq").exists()
    s = DatasetReader(st).find("0000000002")
    assert dataset.lq_members(s) == ["lq_0.png", "lq_1.png", "lq_2.png"] and "lq.png" not in s
    meta = dataset.sample_meta(s)
    assert meta["lq_variants"] == 3 and meta["lq_size"] == [[12, 16]] * 3
    assert [d["type"] for d in meta["degradation"]] == ["haze", "rain", "noise"]
    for k in range(3):
        assert np.array_equal(decode_png(s[f"lq_{k}.png"]), b["lq"][2][k])
    # the trainer reads them (one variant per draw) and balances by the drawn variant's type
    _hq, lq, k = decode_pair(s, np.random.default_rng(1))
    assert np.array_equal(lq, b["lq"][2][k])
    assert degradation_type(meta, variant=1) == "rain"
    # the index names the variant members
    from pairforge.pipeline import ledger
    from pairforge.pipeline.plan import ShardSpec

    index = ledger.write_index(st, {0: rec}, [ShardSpec(0, 0, 3)])
    assert index["members"] == ["hq.png", "lq_0.png", "lq_1.png", "lq_2.png", "json", "txt (optional)"]
    assert verify_dataset(st).ok


def test_variants_need_one_degradation_record_each(tmp_path):
    b = make_batch(0, 3, variants=2)
    b["meta"][0]["degradation"] = {"chain": "realworld"}  # a dict for two LQs: which one is it?
    rec = DatasetWriter(LocalStorage(tmp_path)).write_batch(0, 0, 3, b)
    assert rec["rejected_counts"]["writer/encode_error"] == 1 and "0000000000" not in rec["accepted"]


def test_folder_paths_round_trip():
    for member in ("hq.png", "lq.png", "lq_7.png", "json", "txt"):
        assert folder_member(folder_path("0000000042", member)) == ("0000000042", member)
    assert folder_path("0000000042", "lq_3.png") == "lq_3/0000000042.png"
    with pytest.raises(ValueError):
        folder_member("other/0000000042.png")


# -- commit detection ---------------------------------------------------------------------------------

def two_shards(tmp_path, layout="webdataset"):
    st = LocalStorage(tmp_path)
    w = DatasetWriter(st, layout=layout)
    recs = [w.write_batch(0, 0, 4, make_batch(0, 4)), w.write_batch(1, 4, 8, make_batch(4, 4, seed=1))]
    return st, recs


@pytest.mark.parametrize("content", [b"[]", b"{not json", b'{"shard": 1}', b'"a string"', b"",
                                     json.dumps({"shard": 0, "start": 0, "end": 4, "samples": 3, "bytes": 1,
                                                 "accepted": ["a", "b", "c"], "tar": "shards/shard-000000.tar"}).encode()])
def test_malformed_record_is_uncommitted_with_a_warning_naming_it(content, tmp_path, caplog):
    st, _ = two_shards(tmp_path)
    (tmp_path / "shards/shard-000001.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="pairforge.io.dataset"):
        recs = committed_records(st)
    assert list(recs) == [0]
    assert "shards/shard-000001.json" in caplog.text and "uncommitted" in caplog.text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_changed_data_is_caught_by_size_mtime_or_hash(layout, tmp_path):
    st, recs = two_shards(tmp_path, layout)
    victim = tmp_path / (recs[1]["tar"] if layout == "webdataset" else recs[1]["files"][1])
    stat0 = victim.stat()
    data = bytearray(victim.read_bytes())
    data[60:124] = bytes(b ^ 0xFF for b in data[60:124])  # flip 64 bytes, same size
    victim.write_bytes(bytes(data))
    assert set(scan_commits(st, "size").records) == {0, 1}  # the size alone cannot tell
    scan = scan_commits(st, "mtime")  # newer than its record: hashed, found changed
    assert set(scan.records) == {0} and "changed after it was committed" in str(scan.problems[0])
    os.utime(victim, ns=(stat0.st_atime_ns, stat0.st_mtime_ns))  # hide the change from the mtime check
    assert set(scan_commits(st, "mtime").records) == {0, 1}
    assert set(scan_commits(st, "hash").records) == {0}
    victim.write_bytes(bytes(data[:-10]))  # a truncated file is caught by its size
    assert "bytes, the record says" in str(scan_commits(st, "size").problems[0])
    victim.unlink()
    assert "is missing" in str(scan_commits(st, "size").problems[0])


def test_a_copied_but_intact_dataset_stays_committed(tmp_path):
    st, _ = two_shards(tmp_path)
    for p in (tmp_path / "shards").glob("*.tar"):
        later = p.with_suffix(".json").stat().st_mtime + 5
        os.utime(p, (later, later))  # e.g. cp without -p: data newer than the records
    scan = scan_commits(st, "mtime")
    assert set(scan.records) == {0, 1} and not scan.problems and len(scan.newer) == 2


# -- verify ---------------------------------------------------------------------------------------------

def test_verify_passes_a_clean_dataset_of_either_layout(tmp_path):
    for layout in LAYOUTS:
        st, _recs = two_shards(tmp_path / layout, layout)
        rep = verify_dataset(st)
        assert rep.ok, rep.problems
        assert rep.shards == 2 and rep.samples == 6


def test_verify_finds_a_corrupted_tar(tmp_path):
    st, recs = two_shards(tmp_path)
    tar = tmp_path / recs[0]["tar"]
    data = bytearray(tar.read_bytes())
    with tarfile.open(tar) as tf:  # flip bytes inside the second sample's LQ PNG data
        ti = tf.getmember("0000000002.lq.png")
    off = ti.offset_data + 40
    data[off:off + 64] = bytes(64)
    tar.write_bytes(bytes(data))
    rep = verify_dataset(st)
    lines = [str(p) for p in rep.problems]
    assert lines[0].startswith("shards/shard-000000.tar: sha256") and "does not match its record" in lines[0]
    assert any("0000000002: lq.png is not a decodable image" in x for x in lines)
    assert all("shard-000001" not in x for x in lines)
    assert not verify_dataset(st, decode=False).ok  # the hash alone catches it


def test_verify_finds_a_corrupted_folder_file_and_a_missing_one(tmp_path):
    st, _recs = two_shards(tmp_path, "folder")
    (tmp_path / "lq/0000000006.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "meta/0000000002.json").unlink()
    lines = [str(p) for p in verify_dataset(st).problems]
    assert any(x.startswith("shards/shard-000001.json: lq/0000000006.png has") for x in lines)  # size differs
    assert any(x.startswith("shards/shard-000000.json: meta/0000000002.json is missing") for x in lines)
    # same size, different bytes: found by the hash, and the image does not decode
    st, _recs = two_shards(tmp_path / "b", "folder")
    f = tmp_path / "b/hq/0000000004.png"
    f.write_bytes(bytes(len(f.read_bytes())))
    lines = [str(p) for p in verify_dataset(st).problems]
    assert any(x.startswith("hq/0000000004.png: sha256") for x in lines)
    assert any("sample 0000000004: hq.png is not a decodable image" in x for x in lines)


def test_verify_checks_accounting_and_index(tmp_path):
    st, recs = two_shards(tmp_path)
    from pairforge.pipeline import ledger
    from pairforge.pipeline.plan import ShardSpec

    ledger.write_index(st, {0: recs[0], 1: recs[1]}, [ShardSpec(0, 0, 4), ShardSpec(1, 4, 8)])
    assert verify_dataset(st).ok
    rec = dict(recs[0], rejected=[])  # the record no longer accounts for index 1
    (tmp_path / "shards/shard-000000.json").write_text(json.dumps(rec))
    (tmp_path / "shards/shard-000001.json").write_text("[]")
    lines = [str(p) for p in verify_dataset(st).problems]
    assert "shards/shard-000001.json: not a commit record (a JSON list, expected an object); the shard counts as uncommitted" in lines
    assert any("accounts for 3 accepted + 0 rejected inputs, but the shard owns 4" in x for x in lines)
    assert not any(x.startswith("index.json") for x in lines)  # shard 1 already reported once
    (tmp_path / "shards/shard-000001.tar").unlink()
    (tmp_path / "shards/shard-000001.json").unlink()
    assert "index.json: lists shards/shard-000001.tar, which has no valid commit record" in [str(p) for p in verify_dataset(st).problems]


def test_verify_on_s3(s3_bucket, moto_s3):
    import boto3

    st = open_storage(f"s3://{s3_bucket}/ds")
    w = DatasetWriter(st)
    rec = w.write_batch(0, 0, 4, make_batch(0, 4))
    DatasetWriter(st, layout="folder").write_batch(1, 4, 8, make_batch(4, 4))
    assert verify_dataset(st).ok
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    body = bytearray(s3.get_object(Bucket=s3_bucket, Key="ds/" + rec["tar"])["Body"].read())
    body[600:664] = bytes(64)
    s3.put_object(Bucket=s3_bucket, Key="ds/" + rec["tar"], Body=bytes(body))
    s3.put_object(Bucket=s3_bucket, Key="ds/meta/0000000006.json", Body=b'{"key": "0000000006"}')
    lines = [str(p) for p in verify_dataset(st).problems]
    assert any(x.startswith("shards/shard-000000.tar: sha256") for x in lines)
    assert any("meta/0000000006.json has" in x for x in lines)  # resized
    # a rerun's resume check: the tar was rewritten after its record, so it is hashed and dropped
    assert set(scan_commits(st, "hash").records) == set()
