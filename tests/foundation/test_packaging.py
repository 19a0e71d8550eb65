"""Packaging (issue 10.7): the wheel ships the named configs and py.typed, and a named config runs from an
installed wheel in a fresh virtual environment, from a directory that is not the checkout.

The fresh venv gets no dependencies of its own (``--no-deps``): the heavy ones (torch, ray, pyiqa) come
from this interpreter's site-packages through PYTHONPATH, which holds no ``pairforge`` package (an editable
install is a ``.pth`` hook, and .pth files on PYTHONPATH are not processed), so ``import pairforge`` can
only find the installed wheel."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sh(*args, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{args}: {r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.mark.slow
def test_named_configs_run_from_an_installed_wheel(tmp_path):
    # build from a copy, so the checkout gets no build/ or egg-info
    src = tmp_path / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src)
    wheel = next((tmp_path / "dist").glob("pairforge-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"pairforge/py.typed", "pairforge/configs/quickstart.yaml", "pairforge/configs/degradations/realesrgan.yaml",
            "pairforge/configs/filters/fluxgen.yaml"} <= names

    venv = tmp_path / "venv"
    _sh(sys.executable, "-m", "venv", "--without-pip", venv)
    py = venv / "bin" / "python"
    _sh(sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = venv / "bin" / "pairforge"
    where = _sh(py, "-c", "import pairforge, pathlib; print(pathlib.Path(pairforge.__file__).resolve())", cwd=elsewhere, env=env)
    assert str(venv.resolve()) in where.stdout, where.stdout  # the wheel, not the checkout

    listed = json.loads(_sh(cli, "configs", "--json", cwd=elsewhere, env=env).stdout)
    by_name = {c["name"]: c for c in listed}
    assert by_name["quickstart"]["kind"] == "run" and by_name["quickstart"]["description"]
    assert by_name["degradations/realesrgan"]["kind"] == "degrade"
    assert str(venv.resolve()) in str(Path(by_name["quickstart"]["path"]).resolve())

    _sh(cli, "run", "quickstart", "--out", "out", "--limit", "4", "--executor", "local", "-q", cwd=elsewhere, env=env)
    index = json.loads((elsewhere / "out" / "index.json").read_text())
    assert index["total_inputs"] == 4


def test_named_config_lookup(tmp_path, monkeypatch):
    from pairforge.config import ConfigError, load_config
    from pairforge.named_configs import list_named_configs, named_config_path

    monkeypatch.chdir(tmp_path)  # no configs/ here: the name resolves inside the package
    assert named_config_path("quickstart").name == "quickstart.yaml"
    assert named_config_path("degradations/web").parent.name == "degradations"
    assert named_config_path("../pyproject") is None and named_config_path("/etc/passwd") is None
    assert load_config("quickstart").run.name == "quickstart"
    with pytest.raises(ConfigError, match="pairforge configs"):
        load_config("no-such-config")
    kinds = {c.name: c.kind for c in list_named_configs()}
    assert kinds["quickstart"] == "run" and kinds["train-quickstart"] == "train"
    assert kinds["filters/fluxgen"] == "filters" and kinds["degradations/bsrgan"] == "degrade"
    assert all(c.description and "\n" not in c.description for c in list_named_configs())


def test_checkout_configs_folder_is_the_packaged_one():
    """Paths in the README (configs/quickstart.yaml) keep working in a checkout."""
    from pairforge.named_configs import configs_root

    assert (ROOT / "configs").resolve() == configs_root().resolve()
    assert (ROOT / "src" / "pairforge" / "py.typed").exists()
