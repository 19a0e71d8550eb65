"""Inputs real folders contain: names no line-based listing survives, names that are not UTF-8, broken
and looping symlinks, folders named like images (issue 12: items 8, 9). Every listed entry ends
accepted or rejected with a reason; a resume reads the same listing and rewrites nothing."""
from __future__ import annotations

import json
import os
import tarfile

from pairforge.config import parse_config
from pairforge.io.storage import LocalStorage
from pairforge.pipeline import ledger
from pairforge.pipeline.runner import run_pipeline
from pairforge.sources.files import LISTING, read_listing, write_listing
from tests.conftest import photo, png_bytes


def test_listing_round_trips_any_path():
    names = ["/a/plain.png", "/a/new\nline.png", "/a/sep\u2028ara\u2029tor.png", "/a/cr\r.png",
             os.fsdecode(b"/a/caf\xe9.png"), "/a/\u00e9t\u00e9 \U0001f600.png"]
    data = write_listing(names)
    assert data.count(b"\n") == len(names) and data.isascii()
    assert read_listing(data) == names


def messy_names(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    good = png_bytes(photo("astronaut", 64))
    expected = {}
    for name in ["plain.png", "new\nline.png", "sep\u2028x.png"]:
        (d / name).write_bytes(good)
        expected[name] = "ok"
    latin1 = os.path.join(os.fsencode(d), b"caf\xe9.png")
    with open(latin1, "wb") as f:
        f.write(good)
    expected[os.fsdecode(b"caf\xe9.png")] = "ok"
    os.symlink(d / "nowhere.png", d / "dangling.png")
    expected["dangling.png"] = "source/dangling_symlink"
    os.symlink(d / "loop_b.png", d / "loop_a.png")
    os.symlink(d / "loop_a.png", d / "loop_b.png")
    expected["loop_a.png"] = expected["loop_b.png"] = "source/symlink_loop"
    (d / "dir.jpg").mkdir()
    expected["dir.jpg"] = "source/not_a_file"
    os.symlink(d, d / "back")  # a folder symlink loop: walked once
    return d, expected


def test_every_entry_is_accepted_or_rejected_and_resume_rewrites_nothing(tmp_path):
    folder, expected = messy_names(tmp_path)
    cfg = parse_config({
        "source": {"kind": "files", "paths": [str(folder)]},
        "filters": [{"kind": "sanity", "min_size": 32}],
        "degrade": {"kind": "simple", "scale": 2},
        "output": {"samples_per_shard": 3},
    })
    out = tmp_path / "out"
    first = run_pipeline(cfg, str(out), executor="local")
    listing = read_listing((out / LISTING).read_bytes())
    assert sorted(os.path.basename(p) for p in listing) == sorted(expected)
    run = json.loads((out / "run.json").read_text())
    assert run["plan"]["source"]["folders_revisited"] == 1
    outcome, metas = {}, {}
    records = ledger.committed_records(LocalStorage(out))
    for rec in records.values():
        for r in rec["rejected"]:
            outcome[os.path.basename(listing[r["index"]])] = f"{r['stage']}/{r['rule']}"
            assert r["reason"]
        with tarfile.open(out / rec["tar"]) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".json"):
                    meta = json.loads(tar.extractfile(m).read())
                    name = os.path.basename(listing[int(meta["key"])])
                    outcome[name] = "ok"
                    metas[name] = meta["source"]
    assert outcome == expected
    latin1 = metas[os.fsdecode(b"caf\xe9.png")]
    assert latin1["path"].endswith("caf\\xe9.png") and bytes.fromhex(latin1["path_bytes"]).endswith(b"caf\xe9.png")
    assert metas["new\nline.png"]["path"].endswith("new\nline.png")
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    again = run_pipeline(cfg, str(out), executor="local")
    assert again.shards_written == 0 and again.shards_skipped == first.shards_total
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == mtimes
