"""`pairforge models pull` and `pairforge prompts` through the real typer app."""
from __future__ import annotations

import yaml
from typer.testing import CliRunner

from pairforge.cli import app


def test_models_pull_dry_run_and_prompts(tmp_path):
    cfg = {
        "run": {"seed": 2},
        "source": {"kind": "synthesis", "prompts": {"kind": "template"},
                   "model": {"family": "flux", "id": "black-forest-labs/FLUX.1-schnell"}},
        "filters": [{"kind": "iqa", "metrics": [{"name": "musiq"}]}],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["models", "pull", str(path), "--cache", str(tmp_path / "cache"), "--dry-run"],
                            env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "black-forest-labs/FLUX.1-schnell" in r.output and "musiq" in r.output and "planned" in r.output
    r = CliRunner().invoke(app, ["prompts", str(path), "-n", "7", "--out", str(tmp_path / "p.txt")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "p.txt").read_text().splitlines()) == 7
    cfg["source"]["prompts"] = {"kind": "empty"}
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["prompts", str(path), "-n", "3", "--out", str(tmp_path / "e.txt")])
    assert r.exit_code == 2 and "empty" in r.output
