"""The same commit protocol on S3 (a moto server on loopback), through the CLI."""
import json
import os
import subprocess
import sys

import boto3
import pytest

pytestmark = pytest.mark.slow

CFG = """
source: {kind: bundled, photos: [chelsea, coffee], crop: {mode: tiles, size: 64, stride: 64}}
filters: [{kind: sanity}]
degrade: {kind: simple, scale: 2}
output: {samples_per_shard: 4}
"""


def test_run_resume_info_preview_on_s3(s3_bucket, moto_s3, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG)
    url = f"s3://{s3_bucket}/datasets/small"
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY="testing-secret-value-xyz")
    run = [sys.executable, "-m", "pairforge.cli", "run", str(cfg), "--out", url, "--limit", "10", "--executor", "local"]
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert "datasets/small/index.json" in keys and "datasets/small/shards/shard-000002.json" in keys
    assert "datasets/small/report.html" in keys and "datasets/small/README.md" in keys  # report and card on S3 too
    # the secret never reaches the run's outputs
    for k in keys:
        assert b"testing-secret-value-xyz" not in s3.get_object(Bucket=s3_bucket, Key=k)["Body"].read()
    # lose a record: the rerun redoes that shard only
    s3.delete_object(Bucket=s3_bucket, Key="datasets/small/shards/shard-000001.json")
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "2 of 3 shards already committed" in r.stderr
    index = json.loads(s3.get_object(Bucket=s3_bucket, Key="datasets/small/index.json")["Body"].read())
    assert index["total_inputs"] == 10
    info = subprocess.run([sys.executable, "-m", "pairforge.cli", "info", url, "--json"], capture_output=True, text=True, env=env)
    assert json.loads(info.stdout)["samples"] == index["total_samples"]
    png = tmp_path / "p.png"
    pv = subprocess.run([sys.executable, "-m", "pairforge.cli", "preview", url, "--out", str(png)], capture_output=True, text=True, env=env)
    assert pv.returncode == 0 and png.exists()
    page = tmp_path / "r.html"
    rp = subprocess.run([sys.executable, "-m", "pairforge.cli", "report", url, "--out", str(page)], capture_output=True, text=True, env=env)
    assert rp.returncode == 0 and page.read_text().startswith("<!DOCTYPE html>"), rp.stderr
    vf = subprocess.run([sys.executable, "-m", "pairforge.cli", "verify", url], capture_output=True, text=True, env=env)
    assert vf.returncode == 0 and vf.stdout.startswith("OK: 3 committed shards"), vf.stdout + vf.stderr
    # a shard overwritten on the server after its commit: verify names it, a --verify resume redoes it
    s3.put_object(Bucket=s3_bucket, Key="datasets/small/shards/shard-000000.tar", Body=b"\0" * 10240)
    vf = subprocess.run([sys.executable, "-m", "pairforge.cli", "verify", url], capture_output=True, text=True, env=env)
    assert vf.returncode == 1 and "shards/shard-000000.tar" in vf.stdout
    r = subprocess.run(run + ["--verify"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "2 of 3 shards already committed" in r.stderr, r.stderr
    vf = subprocess.run([sys.executable, "-m", "pairforge.cli", "verify", url], capture_output=True, text=True, env=env)
    assert vf.returncode == 0, vf.stdout


def test_files_source_reads_from_s3(s3_bucket, moto_s3, tmp_path):
    from tests.conftest import photo, png_bytes

    s3 = boto3.client("s3", endpoint_url=moto_s3)
    for i, name in enumerate(["astronaut", "coffee", "chelsea"]):
        s3.put_object(Bucket=s3_bucket, Key=f"in/{i}.png", Body=png_bytes(photo(name, 96)))
    s3.put_object(Bucket=s3_bucket, Key="in/broken.png", Body=b"nope")
    from pairforge.config import parse_config
    from pairforge.pipeline.runner import run_pipeline

    cfg = parse_config({"source": {"kind": "files", "paths": [f"s3://{s3_bucket}/in"]}, "degrade": {"kind": "simple", "scale": 2}})
    s = run_pipeline(cfg, str(tmp_path / "o"), executor="local")
    assert s.accepted == 3 and s.rejected == {"source/undecodable": 1}
