"""Perceptual-hash de-duplication: robustness of the hashes, which copy is kept, stage and reference index."""
import itertools
import json

import cv2
import numpy as np
import pytest
from conftest import photo

from pairforge.batch import new_batch
from pairforge.filters.config import DedupFilterConfig
from pairforge.filters.dedup import dedupe
from pairforge.filters.phash import HashIndex, hamming, hash_image, image_hashes
from pairforge.stage import RunContext
from pairforge.stages.filters import DedupStage


def jpeg(img, q=60):
    _ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("kind", ["phash", "dhash"])
def test_hash_survives_recompression_resize_and_noise_but_separates_photos(kind):
    a = photo("astronaut", 128)
    rng = np.random.default_rng(0)
    noisy = np.clip(a + rng.normal(0, 4, a.shape), 0, 255).astype(np.uint8)
    resized = cv2.resize(cv2.resize(a, (200, 200), interpolation=cv2.INTER_CUBIC), (128, 128), interpolation=cv2.INTER_AREA)
    h = hash_image(a, kind)
    for copy in (jpeg(a, 50), resized, noisy):
        assert hamming(h, hash_image(copy, kind)) <= 6
    for other in ("coffee", "rocket", "chelsea", "camera"):
        assert hamming(h, hash_image(photo(other, 128), kind)) > 12


def test_mirrored_copy_is_caught_only_through_the_mirror_hash():
    a = photo("chelsea", 128)
    flipped = np.ascontiguousarray(a[:, ::-1])
    h, _ = image_hashes(a)
    hf, hff = image_hashes(jpeg(flipped, 70))
    assert hamming(h, hf) > 12  # pHash is not mirror-invariant by itself
    assert hamming(h, hff) <= 6  # the copy's own mirror matches the original


def test_lowest_index_is_kept_whatever_the_order():
    a = photo("astronaut", 96)
    imgs = {5: a, 9: jpeg(a, 55), 2: np.ascontiguousarray(a[:, ::-1]), 7: photo("coffee", 96)}
    for perm in itertools.permutations(imgs):
        idx = list(perm)
        res = dedupe(idx, [f"k{i}" for i in idx], [image_hashes(imgs[i]) for i in idx], max_distance=6)
        by = dict(zip(idx, res))
        assert by[2] is None and by[7] is None
        assert by[5].kept == "k2" and by[9].kept == "k2"


def test_stage_rejects_duplicates_with_kept_key_and_records_hashes():
    a, c = photo("rocket", 96), photo("coffee", 96)
    batch = new_batch([3, 1, 2, 0])
    batch["hq"] = [jpeg(a, 60), c, np.ascontiguousarray(a[:, ::-1]), a]
    st = DedupStage(DedupFilterConfig(), RunContext())
    out = st(batch)
    assert out["reject"][1] is None and out["reject"][3] is None
    for row in (0, 2):
        r = out["reject"][row]
        assert r["stage"] == "dedup" and r["rule"] == "near_duplicate"
        assert r["value"]["kept"] == "0000000000" and r["value"]["scope"] == "batch"
    rec = out["meta"][1]["filters"]["dedup"]
    assert rec["hash"] == "phash" and len(rec["value"]) == 16 and len(rec["mirror"]) == 16


def test_reference_index_from_an_earlier_run_is_persisted_and_reused(tmp_path):
    old = HashIndex("phash")
    old.add("0000000042", image_hashes(photo("camera", 128))[0])
    ref = tmp_path / "old-index.json"
    ref.write_bytes(old.to_json())
    run = tmp_path / "run"
    cfg = DedupFilterConfig(reference=[str(ref)], within_batch=False)
    st = DedupStage(cfg, RunContext(run_url=str(run)))
    assert st.needs_calibration
    st.prepare(lambda n: pytest.fail("the reference needs no upstream samples"))
    persisted = run / "filters" / "dedup.reference.json"
    assert json.loads(persisted.read_text())["entries"][0][0] == f"{ref}#0000000042"
    ref.unlink()  # a worker (or a resume) reads the persisted copy, not the original source
    worker = DedupStage(cfg, RunContext(run_url=str(run)))
    batch = new_batch([0, 1])
    batch["hq"] = [jpeg(photo("camera", 160), 70), photo("camera", 128)[:, ::-1].copy()]
    out = worker(batch)
    for r in out["reject"]:
        assert r["rule"] == "near_duplicate" and r["value"]["kept"] == f"{ref}#0000000042"
        assert r["value"]["scope"] == "reference"
