"""The pipeline in one process (local executor): accounting, determinism, resume semantics."""
import json
import tarfile

import pytest

from pairforge.config import parse_config
from pairforge.io.storage import LocalStorage
from pairforge.pipeline import ledger
from pairforge.pipeline.ledger import ResumeConflict
from pairforge.pipeline.runner import run_pipeline
from pairforge.sources.files import LISTING, read_listing


def files_config(folder, **over):
    data = {
        "run": {"seed": 3},
        "source": {"kind": "files", "paths": [str(folder)], "max_pixels": 400_000},
        "filters": [{"kind": "sanity", "min_size": 32}],
        "degrade": {"kind": "simple", "scale": 2},
        "output": {"samples_per_shard": 4},
    }
    for k, v in over.items():
        data[k] = v
    return parse_config(data)


def all_records(out):
    return ledger.committed_records(LocalStorage(out))


def test_every_input_is_accepted_or_rejected_with_reason(messy_photos, tmp_path):
    folder, expected = messy_photos
    out = tmp_path / "out"
    summary = run_pipeline(files_config(folder), str(out), executor="local")
    listing = read_listing((out / LISTING).read_bytes())
    assert len(listing) == len(expected)  # notes.txt skipped by extension
    outcome = {}
    for rec in all_records(out).values():
        for key in rec["accepted"]:
            outcome[listing[int(key)].rsplit("/", 1)[1]] = "ok"
        for r in rec["rejected"]:
            assert r["reason"] and r["stage"] and r["rule"]
            outcome[listing[r["index"]].rsplit("/", 1)[1]] = f"{r['stage']}/{r['rule']}"
    assert outcome == expected
    assert summary.accepted == sum(v == "ok" for v in expected.values())
    assert summary.accepted + sum(summary.rejected.values()) == len(expected)


def test_sample_json_has_provenance(messy_photos, tmp_path):
    folder, _ = messy_photos
    out = tmp_path / "out"
    run_pipeline(files_config(folder), str(out), executor="local")
    index = json.loads((out / "index.json").read_text())
    with tarfile.open(out / index["shards"][0]["name"]) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile(next(n for n in names if n.endswith(".json"))).read())
    key = meta["key"]
    assert names[:3] == [f"{key}.hq.png", f"{key}.lq.png", f"{key}.json"]
    assert "." not in key
    assert meta["source"]["path"].endswith((".png", ".jpg"))
    assert meta["degradation"]["ops"][0]["op"] == "gaussian_blur"
    assert meta["lq_size"] == [meta["hq_size"][0] // 2, meta["hq_size"][1] // 2]
    assert "sanity" in meta["filters"]


def test_batch_size_and_shard_size_do_not_change_samples(tmp_path):
    base = {"source": {"kind": "bundled", "photos": ["astronaut", "coffee"], "crop": {"mode": "tiles", "size": 96, "stride": 96}}}
    a = parse_config({**base, "output": {"samples_per_shard": 5}, "degrade": {"kind": "simple"}})
    b = parse_config({**base, "output": {"samples_per_shard": 3}})
    b.source.resources.batch_size = 1
    run_pipeline(a, str(tmp_path / "a"), executor="local", limit=12)
    run_pipeline(b, str(tmp_path / "b"), executor="local", limit=12)

    def samples(out):
        got = {}
        for rec in all_records(out).values():
            with tarfile.open(out / rec["tar"]) as tar:
                for m in tar.getmembers():
                    got[m.name] = tar.extractfile(m).read()
        return got

    sa, sb = samples(tmp_path / "a"), samples(tmp_path / "b")
    assert len(sa) == 36 and sa == sb


def test_rerun_is_byte_identical_and_resume_skips_committed(tmp_path):
    cfg = parse_config({"source": {"kind": "bundled", "photos": ["chelsea"], "crop": {"mode": "tiles", "size": 64}}, "output": {"samples_per_shard": 4}})
    out = tmp_path / "o"
    s1 = run_pipeline(cfg, str(out), executor="local", limit=10)
    first = {r["shard"]: r["sha256"] for r in all_records(out).values()}
    # lose shard 1 (tar + record), corrupt shard 2's tar: both must be redone, shard 0 skipped
    (out / "shards/shard-000001.tar").unlink()
    (out / "shards/shard-000001.json").unlink()
    with open(out / "shards/shard-000002.tar", "ab") as f:
        f.write(b"garbage")
    s2 = run_pipeline(cfg, str(out), executor="local", limit=10)
    assert s1.shards_written == 3 and s2.shards_skipped == 1 and s2.shards_written == 2
    assert {r["shard"]: r["sha256"] for r in all_records(out).values()} == first


def test_growing_the_limit_extends_the_dataset(tmp_path):
    cfg = parse_config({"source": {"kind": "bundled", "photos": ["chelsea"], "crop": {"mode": "tiles", "size": 64}}, "output": {"samples_per_shard": 4}})
    out = tmp_path / "o"
    run_pipeline(cfg, str(out), executor="local", limit=6)
    s = run_pipeline(cfg, str(out), executor="local", limit=12)
    # shard 0 [0,4) is kept; shard 1 was [4,6) and is now [4,8): redone
    assert s.shards_skipped == 1 and s.num_samples == 12
    assert json.loads((out / "index.json").read_text())["total_inputs"] == 12


def test_resume_with_a_different_config_is_refused(tmp_path):
    out = tmp_path / "o"
    cfg = parse_config({"source": {"kind": "bundled", "photos": ["chelsea"]}})
    run_pipeline(cfg, str(out), executor="local", limit=2)
    other = parse_config({"source": {"kind": "bundled", "photos": ["chelsea"]}, "degrade": {"kind": "simple", "scale": 2}})
    with pytest.raises(ResumeConflict, match="degrade.scale: 4 -> 2"):
        run_pipeline(other, str(out), executor="local", limit=2)


def test_folder_output_format(tmp_path):
    cfg = parse_config({"source": {"kind": "bundled", "photos": ["chelsea"], "crop": {"mode": "tiles", "size": 64}}, "output": {"samples_per_shard": 4, "format": "folder"}})
    out = tmp_path / "o"
    s = run_pipeline(cfg, str(out), executor="local", limit=5)
    assert s.accepted == 5
    assert sorted(p.name for p in (out / "hq").iterdir()) == [f"{i:010d}.png" for i in range(5)]
    assert len(list((out / "lq").iterdir())) == 5 and len(list((out / "meta").iterdir())) == 5
