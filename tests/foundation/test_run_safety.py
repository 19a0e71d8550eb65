"""Nothing committed is deleted silently, and one run directory has one writer (issue 12: items 1, 2, 5)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from pairforge.config import parse_config
from pairforge.io.runlock import LOCK_NAME, RunLocked, S3RunLock, acquire_run_lock
from pairforge.io.storage import LocalStorage, S3Storage
from pairforge.pipeline.ledger import ShrinkRefused
from pairforge.pipeline.runner import run_pipeline


def small_config():
    return parse_config({
        "run": {"seed": 1},
        "source": {"kind": "bundled", "photos": ["astronaut", "coffee"], "crop": {"mode": "tiles", "size": 64, "stride": 64}},
        "filters": [],
        "degrade": {"kind": "simple", "scale": 2},
        "output": {"samples_per_shard": 4},
    })


def shard_files(out):
    return sorted(p.name for p in (out / "shards").iterdir())


def test_smaller_plan_refuses_to_delete_committed_shards(tmp_path):
    out = tmp_path / "out"
    run_pipeline(small_config(), str(out), executor="local", limit=12)
    before = shard_files(out)
    assert len(before) == 6  # 3 tars + 3 records
    with pytest.raises(ShrinkRefused) as e:
        run_pipeline(small_config(), str(out), executor="local", limit=6)
    msg = str(e.value)
    # names what would go (shard 1 is cut short to [4, 6), shard 2 is outside the plan) and the way out
    assert "2 committed shard(s) (shards 1-2;" in msg and "--allow-shrink" in msg and "--limit 12" in msg
    assert "\n" not in msg
    assert shard_files(out) == before
    # growing the plan again is a plain resume
    s = run_pipeline(small_config(), str(out), executor="local", limit=16)
    assert s.shards_skipped == 3 and s.shards_written == 1
    # the flag lets the smaller plan replace them
    s = run_pipeline(small_config(), str(out), executor="local", limit=6, allow_shrink=True)
    assert s.num_samples == 6
    assert shard_files(out) == ["shard-000000.json", "shard-000000.tar", "shard-000001.json", "shard-000001.tar"]


def test_a_second_writer_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    held = acquire_run_lock(LocalStorage(out))
    with pytest.raises(RunLocked) as e:
        run_pipeline(small_config(), str(out), executor="local", limit=4)
    msg = str(e.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in msg and "\n" not in msg
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    held.release()
    assert not (out / LOCK_NAME).exists()
    run_pipeline(small_config(), str(out), executor="local", limit=4)
    assert not (out / LOCK_NAME).exists()  # released at the end of the run


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "taken": 0, "token": "x"}))
    lock = acquire_run_lock(LocalStorage(out))
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_lock_held_from_another_host_is_not_guessed_stale(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"host": "elsewhere", "pid": 1, "taken": 0, "token": "x"}))
    with pytest.raises(RunLocked, match=f"host elsewhere.*delete {out / LOCK_NAME}"):
        acquire_run_lock(LocalStorage(out))


def test_s3_lock_is_a_conditional_put_with_a_lease(s3_bucket):
    import boto3

    storage = S3Storage(f"s3://{s3_bucket}/run")
    first = acquire_run_lock(storage)
    with pytest.raises(RunLocked, match="in use by another pairforge run"):
        acquire_run_lock(S3Storage(f"s3://{s3_bucket}/run"))
    first.release()
    s3 = boto3.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket, Prefix="run/")
    # an expired lease (a holder frozen or killed) is taken over, and the old holder learns it lost the lock
    frozen = S3RunLock(S3Storage(f"s3://{s3_bucket}/run"), lease_s=0.0, heartbeat=False)
    taker = S3RunLock(S3Storage(f"s3://{s3_bucket}/run"), lease_s=60.0, heartbeat=False)
    assert not frozen.renew()
    with pytest.raises(RunLocked, match="lost its run lock"):
        frozen.check()
    assert taker.renew()
    frozen.release()  # must not delete the taker's lock
    assert json.loads(s3.get_object(Bucket=s3_bucket, Key=f"run/{LOCK_NAME}")["Body"].read())["token"] == taker.owner["token"]
    taker.release()


def test_s3_run_refuses_a_second_writer(s3_bucket):
    held = acquire_run_lock(S3Storage(f"s3://{s3_bucket}/run"))
    with pytest.raises(RunLocked):
        run_pipeline(small_config(), f"s3://{s3_bucket}/run", executor="local", limit=4)
    held.release()


STAGE_AND_HANG = r"""
import sys
from pairforge.io.dataset import TarShardWriter
from pairforge.io.storage import open_storage
w = TarShardWriter(open_storage(sys.argv[1]), 0, 0, 1)
w.write({"__key__": "0000000000", "hq.png": b"h" * 2_000_000, "lq.png": b"l", "json": b"{}"})
print("staged", flush=True)
sys.stdin.read()  # hang here, mid-shard, until killed
"""


@pytest.mark.parametrize("where", ["local", "s3"])
def test_kill_9_while_a_shard_is_staged_leaves_nothing_behind_for_good(where, tmp_path, request):
    """S3: the tar is staged in an anonymous temp file, freed by the kernel when the process dies. Local:
    it is staged inside the run directory, and the next run's cleanup removes it."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    if where == "s3":
        url = f"s3://{request.getfixturevalue('s3_bucket')}/run"
    else:
        url = str(tmp_path / "out")
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", STAGE_AND_HANG, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert p.stdout.readline().strip() == b"staged"
    p.kill()
    p.wait()
    assert list(scratch.iterdir()) == []
    if where == "local":
        assert [f.name.split(".tmp-")[0] for f in (tmp_path / "out" / "shards").iterdir()] == ["shard-000000.tar"]
    s = run_pipeline(small_config(), url, executor="local", limit=4)
    if where == "local":
        assert len(s.removed) == 1 and ".tmp-" in s.removed[0]
        assert shard_files(tmp_path / "out") == ["shard-000000.json", "shard-000000.tar"]
    else:
        assert s.removed == []


def test_degrade_command_refuses_to_shrink_and_offers_the_flag(tmp_path):
    from typer.testing import CliRunner

    from pairforge.cli import app
    from tests.conftest import photo, png_bytes

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket"]):
        (photos / f"{i}.png").write_bytes(png_bytes(photo(name, 64)))
    out = tmp_path / "pairs"
    base = ["degrade", str(photos), str(out), "--preset", "simple", "--samples-per-shard", "2", "-q"]
    assert CliRunner().invoke(app, base).exit_code == 0
    res = CliRunner().invoke(app, [*base, "--limit", "2"])
    assert res.exit_code == 2 and "--allow-shrink" in res.output
    assert CliRunner().invoke(app, [*base, "--limit", "2", "--allow-shrink"]).exit_code == 0
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-000000.json", "shard-000000.tar"]
