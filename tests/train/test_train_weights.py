"""`pairforge models pull` on training configs (VGG19, LPIPS) and the one-line error for a missing file.
Offline: the network fetch is the only thing replaced, the target resolution and the CLI run for real."""
from __future__ import annotations

from pathlib import Path

import yaml
from train_shardkit import NAF_TINY, make_config
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.train import weights
from pairforge.train.config import TrainConfig
from pairforge.train.weights import pull_train_weights, required_weights

runner = CliRunner()


def _cfg(tmp_path: Path, **sections) -> dict:
    return make_config(tmp_path / "out", tmp_path / "data", NAF_TINY, **sections)


def test_required_weights_follow_the_losses_and_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    plain = TrainConfig.model_validate(_cfg(tmp_path))
    assert required_weights(plain) == []
    vgg = TrainConfig.model_validate(_cfg(tmp_path, loss={"perceptual": {"kind": "vgg"}}))
    (w,) = required_weights(vgg)
    assert w.path == tmp_path / "th" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert w.url.endswith("/vgg19-dcbb9e9d.pth") and w.used_by == "loss.perceptual"
    own = TrainConfig.model_validate(_cfg(tmp_path, loss={"perceptual": {"weights_path": str(tmp_path / "v.pth")}}))
    assert required_weights(own)[0].path == tmp_path / "v.pth"
    val = _cfg(tmp_path, loss={"perceptual": {"kind": "lpips"}})
    val["val"] = {"url": "x", "lpips": "auto"}
    ws = required_weights(TrainConfig.model_validate(val))
    assert [w.what for w in ws] == ["lpips-backbone", "lpips-heads"]  # alex for both: listed once
    assert ws[1].path.name == "LPIPS_v0.1_alex-df73285e.pth" and ws[1].url.endswith("LPIPS_v0.1_alex-df73285e.pth")
    assert ws[1].path.parent == tmp_path / "th" / "hub" / "pyiqa"


def test_pull_puts_files_where_the_trainer_reads_them_with_torch_home(tmp_path, monkeypatch):
    cfg = TrainConfig.model_validate(_cfg(tmp_path, loss={"perceptual": {"kind": "vgg"}}))
    fetched = []

    def fake_fetch(url: str, dst: Path) -> None:  # the network boundary only
        fetched.append(url)
        dst.write_bytes(b"weights")

    cache = tmp_path / "cache"
    recs = pull_train_weights(cfg, str(cache), fetch=fake_fetch)
    assert [r["status"] for r in recs] == ["ok"] and len(fetched) == 1
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    assert required_weights(cfg)[0].path.is_file()  # the trainer, run with TORCH_HOME=CACHE/torch, finds it
    assert pull_train_weights(cfg, str(cache), fetch=fake_fetch)[0]["status"] == "present" and len(fetched) == 1


def test_models_pull_cli_accepts_a_training_config(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, loss={"perceptual": {"kind": "vgg"}})
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["models", "pull", str(path), "--cache", str(tmp_path / "c"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "vgg19" in res.output and "planned" in res.output
    monkeypatch.setattr(weights, "_download", lambda url, dst: dst.write_bytes(b"w"))
    res = runner.invoke(app, ["models", "pull", str(path), "--cache", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth").is_file()


def test_a_missing_vgg19_file_is_one_line_from_the_train_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    cfg = _cfg(tmp_path, loss={"perceptual": {"kind": "vgg"}})
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["train", str(path)])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "vgg19-dcbb9e9d.pth" in line and "pairforge models pull" in line
