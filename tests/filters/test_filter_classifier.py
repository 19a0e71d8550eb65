"""The GenIR-style quality classifier: trained on real photo crops (positives) against cartoonised,
over-smoothed and dirty versions of other crops (negatives, as GenIR makes them with img2img), then used
as a filter by probability; also through the typer command the CLI registers."""
import json

import cv2
import numpy as np
import pytest
import typer
from conftest import photo
from typer.testing import CliRunner

from pairforge.batch import new_batch
from pairforge.filters.classifier import (
    FEATURES,
    QualityClassifier,
    image_features,
    train_classifier,
)
from pairforge.filters.classifier_cli import train_classifier_command
from pairforge.filters.config import ClassifierFilterConfig
from pairforge.stage import RunContext
from pairforge.stages.filters import ClassifierStage

NAMES = ["astronaut", "coffee", "rocket", "chelsea", "camera", "brick", "grass", "gravel", "immunohistochemistry"]


def crop(i: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(i)
    im = photo(NAMES[i % len(NAMES)], None)
    y, x = rng.integers(0, im.shape[0] - size), rng.integers(0, im.shape[1] - size)
    return np.ascontiguousarray(im[y : y + size, x : x + size])


def negative(img: np.ndarray, i: int) -> np.ndarray:
    """cartoon (edge-preserving smoothing + posterised colour), over-smooth, or dirty (smeared + blotches)."""
    rng = np.random.default_rng(10_000 + i)
    kind = i % 3
    if kind == 0:
        sm = cv2.bilateralFilter(cv2.bilateralFilter(img, 9, 60, 9), 9, 60, 9)
        return ((sm // 48) * 48 + 24).astype(np.uint8)
    if kind == 1:
        return cv2.GaussianBlur(img, (0, 0), 2.5)
    out = cv2.GaussianBlur(img, (0, 0), 1.5).astype(np.float32)
    for _ in range(6):
        c = (int(rng.integers(0, img.shape[1])), int(rng.integers(0, img.shape[0])))
        cv2.circle(out, c, int(rng.integers(4, 14)), tuple(float(v) for v in rng.uniform(40, 120, 3)), -1)
    return cv2.GaussianBlur(out, (0, 0), 1.0).clip(0, 255).astype(np.uint8)


def write(folder, imgs):
    folder.mkdir(parents=True)
    for k, im in enumerate(imgs):
        cv2.imwrite(str(folder / f"{k:03d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    write(d / "pos", [crop(i) for i in range(48)])
    write(d / "neg", [negative(crop(i), i) for i in range(1000, 1048)])
    report = train_classifier(d / "pos", d / "neg", d / "model.json", val_fraction=0.25, seed=0)
    return d, report


def test_features_are_finite_and_named():
    f = image_features(photo("coffee", 80))
    assert f.shape == (len(FEATURES),) and np.isfinite(f).all()
    assert np.isfinite(image_features(np.full((70, 50, 3), 9, np.uint8))).all()  # flat image: no NaN


def test_training_separates_photos_from_cartoon_smooth_and_dirty_images(trained):
    d, report = trained
    assert report["positives"] == 48 and report["negatives"] == 48 and report["val_samples"] == 24
    assert report["val_accuracy"] >= 0.85 and report["val_auc"] >= 0.9
    doc = json.loads((d / "model.json").read_text())
    assert doc["format"] == "pairforge-quality-classifier" and doc["features"] == list(FEATURES)


def test_classifier_filter_keeps_photos_and_rejects_negatives_it_never_saw(trained):
    d, _ = trained
    pos = [crop(i) for i in range(5000, 5012)]
    neg = [negative(crop(i), i) for i in range(6000, 6012)]
    b = new_batch(list(range(24)))
    b["hq"] = pos + neg
    out = ClassifierStage(ClassifierFilterConfig(model=str(d / "model.json"), min_prob=0.5), RunContext())(b)
    kept_pos = sum(r is None for r in out["reject"][:12])
    rej_neg = sum(r is not None for r in out["reject"][12:])
    assert kept_pos >= 10 and rej_neg >= 10
    r = next(r for r in out["reject"][12:] if r is not None)
    assert (r["stage"], r["rule"]) == ("classifier", "low_quality") and 0 <= r["value"] < 0.5
    assert 0 <= out["meta"][0]["filters"]["classifier"]["prob"] <= 1


def test_model_file_errors_are_clear(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="train-classifier"):
        QualityClassifier.load(tmp_path / "missing.json")
    d, _ = trained
    doc = json.loads((d / "model.json").read_text())
    doc["features"] = doc["features"][:-1]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="retrain"):
        QualityClassifier.load(tmp_path / "old.json")


def test_cli_command_trains_and_reports(trained, tmp_path):
    d, _ = trained
    app = typer.Typer()
    app.command("train-classifier")(train_classifier_command)
    app.command("noop")(lambda: None)  # a second command keeps typer in multi-command mode, as in pairforge
    res = CliRunner().invoke(app, ["train-classifier", "--pos", str(d / "pos"), "--neg", str(d / "neg"), "--out", str(tmp_path / "m.json"), "--max-images", "20"])
    assert res.exit_code == 0, res.output
    assert "val_accuracy" in res.output and (tmp_path / "m.json").exists()
    assert json.loads((tmp_path / "m.json").read_text())["training"]["positives"] == 20
    res = CliRunner().invoke(app, ["train-classifier", "--pos", str(tmp_path / "nothing"), "--neg", str(d / "neg"), "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "no such image source" in res.output
