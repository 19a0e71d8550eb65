"""Every mistake a user can make on the command line, and every fault of the output store, ends in one
line that names the problem, never a traceback (issue 12, item 12)."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.io.storage import LocalStorage
from pairforge.pipeline import ledger

CFG = """
run: {name: msg, seed: 2}
source: {kind: bundled, photos: [astronaut, coffee], crop: {mode: tiles, size: 64, stride: 64}}
filters:
  - {kind: sanity, min_size: 32}
degrade: {kind: simple, scale: 2}
output: {samples_per_shard: 4}
"""


@pytest.fixture()
def cfg(tmp_path):
    p = tmp_path / "cfg.yaml"
    p.write_text(CFG)
    return p


def one_line_error(res, *needles):
    """The command failed with exactly one error line containing every needle, and no traceback."""
    text = res.output
    assert res.exit_code == 2, text
    assert "Traceback" not in text and res.exception is None or isinstance(res.exception, SystemExit), text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], text  # informational lines ("resuming: ...") may precede it
    assert not [ln for ln in lines if ln.startswith(("Traceback", "  File "))], text
    for n in needles:
        assert n in errors[0], (n, text)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=2000)


def test_config_path_problems(tmp_path):
    one_line_error(invoke("run", tmp_path, "--out", tmp_path / "o"), str(tmp_path), "is a folder")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("run: {name: caf\u00e9}\n".encode("latin-1"))
    one_line_error(invoke("run", latin, "--out", tmp_path / "o"), "not UTF-8", "0xe9")


@pytest.mark.parametrize("override, needles", [
    ("run.name.x=1", ["run.name is a single value", "'x'"]),
    ("filters.9.kind=x", ["filters has 1 entries", "not 9"]),
    ("filters.x.kind=x", ["filters is a list", "'x' must be an index"]),
    ("run.seed=[unclosed", ["not valid YAML"]),
    ("noequals", ["dotted.key=value"]),
])
def test_bad_overrides(cfg, tmp_path, override, needles):
    one_line_error(invoke("run", cfg, "--out", tmp_path / "o", "--set", override), override, *needles)
    one_line_error(invoke("validate", cfg, "--set", override), *needles)


def test_bad_output_locations(cfg, tmp_path, moto_s3):
    one_line_error(invoke("run", cfg, "--out", "http://example.com/x"), "unsupported output location", "s3://bucket")
    one_line_error(invoke("run", cfg, "--out", "s3://"), "names no bucket")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_error(invoke("run", cfg, "--out", a_file), "is a file, not a folder")
    one_line_error(invoke("run", cfg, "--out", a_file / "below"), "a parent of it is a file")
    one_line_error(invoke("run", cfg, "--out", "s3://pf-no-such-bucket/x"), "bucket 'pf-no-such-bucket' does not exist")


def test_read_only_output(cfg, tmp_path):
    if os.geteuid() == 0:  # root ignores permission bits: /proc refuses new entries even to root
        target = "/proc/pairforge-out"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "out"
    one_line_error(invoke("run", cfg, "--out", target), str(target), "cannot write there")


def test_disk_full_while_writing_a_shard_is_one_line_and_keeps_committed_shards(cfg, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert invoke("run", cfg, "--out", out, "--executor", "local", "--limit", "8", "-q").exit_code == 0
    real = LocalStorage.open_staging

    class FullFile:
        """A staging file on a full disk: the first write fails with ENOSPC, as the kernel reports it."""

        def __init__(self, f):
            self.f = f
            self.name = f.name

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, k):
            return getattr(self.f, k)

    monkeypatch.setattr(LocalStorage, "open_staging", lambda self, name: FullFile(real(self, name)))
    res = invoke("run", cfg, "--out", out, "--executor", "local", "--limit", "16", "-q")
    one_line_error(res, "writing shard ", "No space left on device", "rerun the same command")
    assert "writing shard 2 " in res.output or "writing shard 3 " in res.output  # shards may run in parallel
    monkeypatch.undo()
    assert sorted(ledger.committed_records(LocalStorage(out))) == [0, 1]
    assert not [p for p in (out / "shards").iterdir() if ".tmp-" in p.name]  # the failed shard's temp is gone


def test_refused_resume_names_only_the_changed_fields(cfg, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", cfg, "--out", out, "--executor", "local", "--limit", "4", "-q").exit_code == 0
    res = invoke("run", cfg, "--out", out, "--executor", "local", "--limit", "4", "--set", "filters.0.min_size=40")
    assert res.exit_code == 2
    assert "filters.0.min_size: 32 -> 40" in res.output
    assert "min_std" not in res.output and "kind" not in res.output  # not the whole filters list


def test_progress_total_counts_the_pending_shards_themselves(cfg, tmp_path):
    """Shard 0 of 3 is redone (its record removed): the bar's total is its 4 inputs, not the last shard's."""
    out = tmp_path / "out"
    assert invoke("run", cfg, "--out", out, "--executor", "local", "--limit", "10", "-q").exit_code == 0
    (out / "shards" / "shard-000000.json").unlink()
    from pairforge import cli

    totals = []
    real = cli.Progress.add_task
    import unittest.mock as mock

    with mock.patch.object(cli.Progress, "add_task", lambda self, *a, **kw: totals.append(kw["total"]) or real(self, *a, **kw)):
        assert invoke("run", cfg, "--out", out, "--executor", "local", "--limit", "10").exit_code == 0
    assert totals == [4]


def test_sigint_says_what_is_committed_and_how_to_resume(cfg, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    # a long run (7105 one-sample shards through the Real-ESRGAN chain: minutes on any machine)
    # interrupted as soon as its first shard is committed
    p = subprocess.Popen(
        [sys.executable, "-m", "pairforge.cli", "run", str(cfg), "--out", str(out), "--executor", "local",
         "--set", "output.samples_per_shard=1", "--set", "degrade={kind: chain, preset: realesrgan}",
         "--set", "source.crop={mode: tiles, size: 32, stride: 8}", "-q"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        while not (out / "shards" / "shard-000000.json").exists():
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)  # polling, not a timing assertion
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=300)
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr
    line = [ln for ln in stderr.splitlines() if ln.startswith("interrupted:")]
    assert len(line) == 1 and "shards are committed in" in line[0] and "rerun the same command to resume" in line[0], stderr
    assert not (out / "run.lock").exists()


@pytest.mark.parametrize("executor", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_real_full_disk_is_one_line_and_leaves_no_temp_files(cfg, tmp_path, executor):
    """A 256 KiB tmpfs fills after a few shards: the kernel's ENOSPC (raised on write, and again when the
    temp file is closed) ends the run with one line, through Ray's worker wrapping too."""
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (the fault-injected test above runs everywhere)")
    try:
        out = small / "out"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        r = subprocess.run([sys.executable, "-m", "pairforge.cli", "run", str(cfg), "--out", str(out),
                            "--executor", executor, "--set", "ray.num_cpus=2", "-q"],
                           capture_output=True, text=True, env=env, timeout=600)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert r.returncode == 2 and len(errors) == 1, r.stderr
        assert "No space left on device" in errors[0] and "rerun the same command" in errors[0], r.stderr
        assert "Traceback" not in r.stderr
        assert ledger.committed_records(LocalStorage(out))  # the shards that fitted are kept
        assert not [p.name for p in (out / "shards").iterdir() if ".tmp-" in p.name]
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
