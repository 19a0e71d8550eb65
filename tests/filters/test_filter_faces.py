"""Privacy filter: OpenCV's LBP frontal-face cascade on the astronaut photo; reject, blur, record."""
import numpy as np
from conftest import photo

from pairforge.batch import new_batch
from pairforge.filters.config import PrivacyFilterConfig
from pairforge.filters.faces import FaceBox, FaceDetector, _iou, blur_faces
from pairforge.stage import RunContext
from pairforge.stages.filters import PrivacyStage

# Eileen Collins' face in skimage's astronaut (512 x 512): rows ~60-170, columns ~170-270
TRUE_FACE = FaceBox(60, 170, 110, 100)


def test_detects_the_astronaut_face_and_no_face_in_faceless_photos():
    det = FaceDetector()
    boxes = det.detect(photo("astronaut", None))
    assert boxes and _iou(boxes[0], TRUE_FACE) > 0.5  # largest detection is the face
    for name in ("coffee", "rocket", "chelsea"):
        assert det.detect(photo(name, None)) == [], name


def test_blur_changes_the_face_and_nothing_far_from_it():
    img = photo("astronaut", None)
    out = blur_faces(img, [TRUE_FACE], margin=0.1)
    face = (slice(70, 160), slice(180, 260))
    assert np.abs(out[face].astype(int) - img[face]).mean() > 5
    assert np.array_equal(out[300:], img[300:]) and np.array_equal(out[:, 350:], img[:, 350:])
    pix = blur_faces(img, [TRUE_FACE], method="pixelate")
    assert len(np.unique(pix[face].reshape(-1, 3), axis=0)) < 60


def _batch():
    b = new_batch([0, 1])
    b["hq"] = [photo("astronaut", None), photo("coffee", None)]
    return b


def test_stage_reject_blur_and_record():
    out = PrivacyStage(PrivacyFilterConfig(), RunContext())(_batch())
    assert out["reject"][0]["stage"] == "privacy" and out["reject"][0]["rule"] == "faces"
    assert out["reject"][0]["value"] >= 1
    assert out["reject"][1] is None and out["meta"][1]["filters"]["privacy"]["faces"] == 0

    before = photo("astronaut", None)
    out = PrivacyStage(PrivacyFilterConfig(action="blur"), RunContext())(_batch())
    assert out["reject"][0] is None
    rec = out["meta"][0]["filters"]["privacy"]
    assert rec["blurred"] == "gaussian" and rec["faces"] >= 1 and len(rec["boxes"][0]) == 4
    assert not np.array_equal(out["hq"][0], before)

    out = PrivacyStage(PrivacyFilterConfig(action="record"), RunContext())(_batch())
    assert out["reject"] == [None, None] and np.array_equal(out["hq"][0], before)
