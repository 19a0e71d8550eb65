"""`info`, `preview` and `verify` as a user runs them, on both output layouts, with damaged shards."""
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

CFG = """
run: {name: views, seed: 7}
source: {kind: bundled, photos: [astronaut, coffee], crop: {mode: tiles, size: 96, stride: 160}}
filters: [{kind: sanity, min_size: 32}]
degrade: {kind: realworld}
output: {samples_per_shard: 4, format: FORMAT}
"""


def cli(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "pairforge.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


@pytest.fixture(scope="module", params=["folder", "webdataset"])
def made(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    cfg = tmp / "c.yaml"
    cfg.write_text(CFG.replace("FORMAT", request.param))
    out = tmp / "out"
    r = cli("run", cfg, "--out", out, "--limit", 8, "--executor", "local", "-q")
    assert r.returncode == 0, r.stderr
    return request.param, cfg, out


def test_preview_works_on_either_layout(made, tmp_path):
    _fmt, _cfg, out = made
    png = tmp_path / "sheet.png"
    r = cli("preview", out, "--out", png, "--n", 8)
    assert r.returncode == 0, r.stderr  # folder output used to say "holds no committed pairs"
    assert Image.open(png).size[0] > 4 * 96


def test_info_key_works_on_either_layout(made):
    _fmt, _cfg, out = made
    r = cli("info", out, "--key", "0000000005")
    assert r.returncode == 0, r.stderr  # folder output used to crash with a TypeError
    meta = json.loads(r.stdout)
    assert meta["key"] == "0000000005" and meta["degradation"]["chain"] == "realworld"
    r = cli("info", out, "--key", "0000009999")
    assert r.returncode == 2 and "no accepted sample with key '0000009999'" in r.stderr


def test_info_prints_breakdowns_from_metadata(made):
    fmt, _cfg, out = made
    data = json.loads(cli("info", out, "--json").stdout)
    assert data["layout"] == fmt and data["samples"] == 8
    assert sum(data["degradations"].values()) == 8
    assert sum(sum(row.values()) for row in data["degradation_severity"].values()) >= 8
    assert data["sources"] == {"bundled astronaut": 8}
    text = cli("info", out).stdout
    assert "LQs by degradation type and severity" in text and "Pairs by source" in text


def test_preview_by_type_has_one_row_per_type(made, tmp_path):
    _fmt, _cfg, out = made
    data = json.loads(cli("info", out, "--json").stdout)
    png = tmp_path / "types.png"
    r = cli("preview", out, "--by", "type", "--out", png, "--cell", 64, "--columns", 2)
    assert r.returncode == 0, r.stderr
    n_types = len(data["degradation_severity"])
    assert Image.open(png).size[1] >= n_types * 64
    assert cli("preview", out, "--by", "colour").returncode == 2


def test_verify_and_run_resume_on_a_corrupted_shard(made, tmp_path):
    import shutil

    _fmt, cfg, made_out = made
    out = tmp_path / "copy"
    shutil.copytree(made_out, out)  # copy2 keeps mtimes
    r = cli("verify", out)
    assert r.returncode == 0 and r.stdout.startswith("OK: 2 committed shards, 8 pairs"), r.stdout + r.stderr
    rec = json.loads((out / "shards/shard-000001.json").read_text())
    victim = out / (rec["tar"] or rec["files"][0])
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[200:264] = bytes(64)
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as before: only a hash can tell
    r = cli("verify", out)
    assert r.returncode == 1, r.stdout
    lines = r.stdout.strip().splitlines()
    assert lines and all(line.startswith(("shards/shard-000001", "hq/", "lq/", "meta/")) for line in lines)
    assert "sha256" in lines[0] and "problem(s)" in r.stderr
    # a plain resume trusts size and mtime; --verify hashes every shard and redoes this one
    r = cli("run", cfg, "--out", out, "--limit", 8, "--executor", "local")
    assert r.returncode == 0 and "2 of 2 shards already committed" in r.stderr
    r = cli("run", cfg, "--out", out, "--limit", 8, "--executor", "local", "--verify")
    assert r.returncode == 0 and "1 of 2 shards already committed" in r.stderr, r.stderr
    assert "shards/shard-000001.json" in r.stderr and "changed after it was committed" in r.stderr
    assert cli("verify", out).returncode == 0


def test_malformed_record_warns_and_never_tracebacks(made, tmp_path):
    import shutil

    _fmt, cfg, made_out = made
    out = tmp_path / "copy"
    shutil.copytree(made_out, out)
    (out / "shards/shard-000000.json").write_text("[]")
    r = cli("info", out)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "warning: shards/shard-000000.json: not a commit record" in r.stdout
    assert "incomplete" in r.stdout
    r = cli("verify", out)
    assert r.returncode == 1 and "shards/shard-000000.json: not a commit record" in r.stdout
    r = cli("run", cfg, "--out", out, "--limit", 8, "--executor", "local", "-q")
    assert r.returncode == 0 and "Traceback" not in r.stderr and "shards/shard-000000.json" in r.stderr
    assert cli("verify", out).returncode == 0


def test_verify_refuses_what_is_not_a_dataset(tmp_path):
    r = cli("verify", tmp_path)
    assert r.returncode == 2 and "is not a pairforge dataset" in " ".join(r.stderr.split())
