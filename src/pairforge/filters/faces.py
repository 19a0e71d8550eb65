"""Face detection for the privacy filter, and face anonymisation by blurring.

The detector is OpenCV's LBP frontal-face cascade (``lbpcascade_frontalface``). OpenCV 5's Python wheel
no longer ships ``cv2.data.haarcascades`` nor ``CascadeClassifier`` (they moved out of the main
modules), and the YuNet ONNX model is not shipped either; scikit-image ships OpenCV's LBP cascade file
and a reader for it (``skimage.feature.Cascade``), so that is what runs here, offline. Another LBP
cascade XML can be given by path.

Detection runs on a copy downscaled to ``detect_max_side`` (the cascade is slow on large images) and the
boxes are mapped back to full resolution. Frontal faces only: profiles and tiny faces are missed, so the
optional MLLM privacy question is the second line for a dataset that must hold no identifiable people.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A face in full-resolution pixel coordinates: top row, left column, height, width."""

    top: int
    left: int
    height: int
    width: int

    def to_list(self) -> list[int]:
        return [self.top, self.left, self.height, self.width]


def default_cascade() -> str:
    from skimage import data

    return data.lbp_frontal_face_cascade_filename()


class FaceDetector:
    """Frontal-face detection with an OpenCV LBP cascade (via scikit-image's cascade reader)."""

    def __init__(
        self,
        cascade: str | None = None,
        detect_max_side: int = 512,
        min_face: int = 24,
        scale_factor: float = 1.2,
        min_neighbors: int = 8,
    ):
        from skimage.feature import Cascade

        self.cascade_path = cascade or default_cascade()
        self._cascade = Cascade(self.cascade_path)
        self.detect_max_side = detect_max_side
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, img: np.ndarray) -> list[FaceBox]:
        """Faces in a uint8 RGB image, largest first (overlapping detections merged)."""
        h, w = img.shape[:2]
        s = min(1.0, self.detect_max_side / max(h, w))
        small = img if s == 1.0 else cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < self.min_face:
            return []
        found = self._cascade.detect_multi_scale(
            img=np.ascontiguousarray(small),
            scale_factor=self.scale_factor,
            step_ratio=1,
            min_size=(self.min_face, self.min_face),
            max_size=(min(small.shape[:2]), min(small.shape[:2])),
            min_neighbor_number=self.min_neighbors,
        )
        boxes = [
            FaceBox(round(d["r"] / s), round(d["c"] / s), round(d["height"] / s), round(d["width"] / s)) for d in found
        ]
        return _merge(sorted(boxes, key=lambda b: -b.height * b.width))


def _iou(a: FaceBox, b: FaceBox) -> float:
    t, l = max(a.top, b.top), max(a.left, b.left)
    bt, rt = min(a.top + a.height, b.top + b.height), min(a.left + a.width, b.left + b.width)
    inter = max(0, bt - t) * max(0, rt - l)
    union = a.height * a.width + b.height * b.width - inter
    return inter / union if union else 0.0


def _merge(boxes: list[FaceBox], iou: float = 0.3) -> list[FaceBox]:
    kept: list[FaceBox] = []
    for b in boxes:
        if all(_iou(b, k) < iou for k in kept):
            kept.append(b)
    return kept


def blur_faces(img: np.ndarray, boxes: list[FaceBox], margin: float = 0.25, method: str = "gaussian") -> np.ndarray:
    """A copy of ``img`` with every (margin-grown) box made unrecognisable; pixels outside stay exact."""
    out = img.copy()
    h, w = img.shape[:2]
    for b in boxes:
        dy, dx = round(b.height * margin), round(b.width * margin)
        t, l = max(0, b.top - dy), max(0, b.left - dx)
        bt, r = min(h, b.top + b.height + dy), min(w, b.left + b.width + dx)
        if bt <= t or r <= l:
            continue
        roi = out[t:bt, l:r]
        if method == "pixelate":
            cells = 6
            small = cv2.resize(roi, (cells, cells), interpolation=cv2.INTER_AREA)
            out[t:bt, l:r] = cv2.resize(small, (r - l, bt - t), interpolation=cv2.INTER_NEAREST)
        elif method == "gaussian":
            sigma = max(2.0, max(bt - t, r - l) / 6.0)
            out[t:bt, l:r] = cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
        else:
            raise ValueError(f"unknown blur method {method!r}; allowed: gaussian, pixelate")
    return out
