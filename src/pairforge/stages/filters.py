"""Filter stages: bind the filters of :mod:`pairforge.filters` to the stage protocol.

Every stage records what it measured under ``meta["filters"][<stage name>]`` for every live row it saw,
and marks failing rows rejected with (stage, rule, reason, value); rows are never dropped. Heavy state
(metrics, models, clients) is created in :meth:`setup` and never pickled: a stage object travels from the
driver to the workers light, with only what :meth:`prepare` computed (and that is persisted in the run
directory too, which is what workers and resumes read).
"""
from __future__ import annotations

import dataclasses
import json
import logging

from pairforge.batch import Batch, Rejection, StageResources, live_rows, reject
from pairforge.devices import resolve_device
from pairforge.errors import ModelLoadError
from pairforge.filters.classifier import QualityClassifier
from pairforge.filters.config import (
    ClassifierFilterConfig,
    DedupFilterConfig,
    IQAFilterConfig,
    JudgeFilterConfig,
    JudgeSettings,
    PrivacyFilterConfig,
)
from pairforge.filters.dedup import dedupe, hashes_record, load_reference
from pairforge.filters.iqa import (
    IQAScorer,
    ThresholdStore,
    calibrate,
    check_thresholds,
    passes,
)
from pairforge.filters.phash import HashIndex, image_hashes
from pairforge.filters.sanity import check_image
from pairforge.stage import RunContext, Stage

log = logging.getLogger(__name__)


def _filters_meta(batch: Batch, row: int) -> dict:
    return batch["meta"][row].setdefault("filters", {})


class FilterStage(Stage):
    """Common plumbing: the stage name comes from the config (``name`` or the kind). A filter reads the
    HQ and writes its measurements under ``meta["filters"]`` (and ``reject`` when a sample fails)."""

    reads = ("index", "key", "hq", "meta", "reject")
    writes = ("meta", "reject")

    def __init__(self, config, context: RunContext):
        super().__init__(config, context)
        self.name = getattr(config, "name", None) or config.kind


class SanityStage(FilterStage):
    name = "sanity"
    concurrent_calls = True  # pure numpy checks per image

    def process(self, batch: Batch) -> Batch:
        for row in live_rows(batch):
            rejection, stats = check_image(batch["hq"][row], self.config, stage=self.name)
            _filters_meta(batch, row)[self.name] = stats
            if rejection is not None:
                reject(batch, row, rejection)
        return batch


class IQAStage(FilterStage):
    """pyiqa scores with absolute or calibrated percentile rules (see :mod:`pairforge.filters.iqa`)."""

    name = "iqa"
    _transient = ("scorer",)

    def __init__(self, config: IQAFilterConfig, context: RunContext):
        super().__init__(config, context)
        self.scorer: IQAScorer | None = None
        self.thresholds: dict[str, float] | None = None  # calibrated keep_top thresholds by metric

    @property
    def needs_calibration(self) -> bool:  # type: ignore[override]
        return any(m.keep_top is not None for m in self.config.metrics)

    def _store(self) -> ThresholdStore:
        return ThresholdStore(self.context.run_storage(), self.name)

    def prepare(self, upstream) -> None:
        """Score a calibration sample on the driver and persist the thresholds, unless already persisted."""
        if not self.needs_calibration:
            return
        store = self._store()
        doc = store.load()
        if doc is None:
            cfg = self.config
            batch = upstream(cfg.calibration_samples)
            rows = live_rows(batch)
            if len(rows) < 2:
                raise RuntimeError(
                    f"stage {self.name}: only {len(rows)} sample(s) survive the earlier stages among the first "
                    f"{cfg.calibration_samples}; cannot estimate keep_top thresholds"
                )
            rules = [m for m in cfg.metrics if m.keep_top is not None]
            scorer = IQAScorer(rules, device=resolve_device(self.context.device), max_side=cfg.max_side, batch_size=cfg.score_batch_size)
            scores = scorer.score([batch["hq"][r] for r in rows])
            doc = calibrate(cfg, scores, scorer.info)
            doc["calibration_indices"] = [int(batch["index"][0]), int(batch["index"][-1])]
            store.save(doc)
            log.info("stage %s: calibrated thresholds on %d samples: %s", self.name, len(rows), doc["metrics"])
        self.thresholds = check_thresholds(doc, self.config, store.path)

    def setup(self) -> None:
        cfg = self.config
        self.device = resolve_device(self.context.device, self.placement)
        self.scorer = IQAScorer(cfg.metrics, device=self.device, max_side=cfg.max_side, batch_size=cfg.score_batch_size)
        self.scorer.load()
        if self.needs_calibration:
            store = self._store()
            doc = store.load()
            if doc is not None:
                self.thresholds = check_thresholds(doc, cfg, store.path)
            elif self.thresholds is None:
                raise RuntimeError(
                    f"stage {self.name} has keep_top rules but no calibrated thresholds: the pipeline must call "
                    f"prepare() before processing (missing {store.path} in the run directory)"
                )

    def process(self, batch: Batch) -> Batch:
        rows = live_rows(batch)
        if not rows:
            return batch
        scores = self.scorer.score([batch["hq"][r] for r in rows])
        for j, row in enumerate(rows):
            record = {}
            verdict: Rejection | None = None
            for rule in self.config.metrics:
                info = self.scorer.info[rule.name]
                s = scores[rule.name][j]
                entry = {"score": s, "lower_better": info.lower_better}
                t = rule.threshold
                if rule.keep_top is not None:
                    t = self.thresholds[rule.name]
                    entry.update(rule="keep_top", keep_top=rule.keep_top)
                elif t is not None:
                    entry["rule"] = "threshold"
                if t is not None:
                    ok = passes(s, t, info.lower_better)
                    entry.update(threshold=t, passed=ok)
                    if verdict is None and not ok:
                        op = ">" if info.lower_better else "<"
                        verdict = Rejection(self.name, rule.name, f"{rule.name} score {s:.4g} {op} threshold {t:.4g}", s)
                record[rule.name] = entry
            _filters_meta(batch, row)[self.name] = record
            if verdict is not None:
                reject(batch, row, verdict)
        return batch


def apply_judgements(stage: str, settings: JudgeSettings, batch: Batch, rows: list[int], judgements, judge, section: dict | None = None) -> None:
    """Record each judgement and apply the verdict or the failure policy to its row."""
    for row, j in zip(rows, judgements):
        rec = j.record(judge.provider, judge.model)
        if section is None:
            _filters_meta(batch, row)[stage] = rec
        else:
            _filters_meta(batch, row).setdefault(stage, {})[section["key"]] = rec
        if j.ok:
            v = j.verdict
            if not v.passed:
                rule = v.categories[0] if v.categories else "failed"
                reason = "; ".join(v.reasons) or "the judge failed the image without a reason"
                reject(batch, row, Rejection(stage, rule, reason, list(v.categories)))
            continue
        if settings.on_error == "raise":
            raise RuntimeError(f"stage {stage}: judgement of sample {batch['key'][row]} failed: {j.error}")
        if settings.on_error == "reject":
            reject(
                batch,
                row,
                Rejection(stage, "judge_error", f"judgement failed after {j.attempts} attempt(s): {j.error}", j.error_type),
            )
        else:
            rec["unjudged"] = True  # accepted by policy, and says so


def judge_resources(stage: Stage, settings: JudgeSettings | None) -> StageResources:
    """The stage's resources, with one GPU per worker by default for a local judge that will run on a
    GPU (``resources.num_gpus`` not set in the config). A CPU run (``run.device: cpu``, or ``auto`` on a
    machine without CUDA, or ``llm.device: cpu``) keeps 0, so CPU-only configs plan on CPU-only clusters."""
    res = Stage.resources.fget(stage)
    given = "num_gpus" in stage.config.resources.model_fields_set
    if settings is not None and not given and settings.wants_gpu(stage.context.device):
        res = dataclasses.replace(res, num_gpus=1.0)
    return res


def _judge_device(settings: JudgeSettings, run_device: str | None) -> str | None:
    """``llm.device``, else the run's device; ``auto`` is resolved in the worker that loads the model."""
    if settings.llm.device != "auto":
        return settings.llm.device
    return run_device if run_device not in (None, "auto") else None


class JudgeStage(FilterStage):
    """GenIR-style MLLM inspection (see :mod:`pairforge.filters.judge`)."""

    name = "judge"
    _transient = ("judge",)

    def __init__(self, config: JudgeFilterConfig, context: RunContext):
        super().__init__(config, context)
        self.judge = None

    @property
    def resources(self) -> StageResources:
        return judge_resources(self, self.config)

    def setup(self) -> None:
        from pairforge.filters.judge import make_judge

        self.judge = make_judge(self.config, _judge_device(self.config, self.context.device),
                                self.context.run_storage(), component=self.name)
        self.judge.setup()

    def teardown(self) -> None:
        """Close the client (connections, threads, local weights) and its usage log."""
        if self.judge is not None:
            self.judge.close()
            self.judge = None
        self._ready = False

    def process(self, batch: Batch) -> Batch:
        rows = live_rows(batch)
        if not rows:
            return batch
        try:
            js = self.judge.judge_images([batch["hq"][r] for r in rows])
        finally:
            self.judge.flush()
        apply_judgements(self.name, self.config, batch, rows, js, self.judge)
        return batch


class PrivacyStage(FilterStage):
    """Faces (OpenCV LBP cascade): reject, blur or record; then, optionally, the MLLM privacy question."""

    name = "privacy"
    writes = ("hq", "meta", "reject")  # action: blur rewrites the HQ
    _transient = ("detector", "judge")

    def __init__(self, config: PrivacyFilterConfig, context: RunContext):
        super().__init__(config, context)
        self.detector = None
        self.judge = None

    @property
    def resources(self) -> StageResources:
        return judge_resources(self, self.config.judge)

    def setup(self) -> None:
        from pairforge.filters.faces import FaceDetector

        c = self.config
        self.detector = FaceDetector(c.cascade, c.detect_max_side, c.min_face, c.scale_factor, c.min_neighbors)
        if c.judge is not None:
            from pairforge.filters.judge import make_judge

            self.judge = make_judge(c.judge, _judge_device(c.judge, self.context.device),
                                    self.context.run_storage(), component=self.name)
            self.judge.setup()

    def teardown(self) -> None:
        if self.judge is not None:
            self.judge.close()
            self.judge = None
        self._ready = False

    def process(self, batch: Batch) -> Batch:
        from pairforge.filters.faces import blur_faces

        c = self.config
        for row in live_rows(batch):
            img = batch["hq"][row]
            boxes = self.detector.detect(img)
            rec = {"detector": "opencv_lbp_frontalface", "faces": len(boxes), "boxes": [b.to_list() for b in boxes]}
            _filters_meta(batch, row)[self.name] = rec
            if not boxes:
                continue
            if c.action == "reject":
                reject(batch, row, Rejection(self.name, "faces", f"{len(boxes)} face(s) detected", len(boxes)))
            elif c.action == "blur":
                batch["hq"][row] = blur_faces(img, boxes, c.margin, c.blur)
                rec["blurred"] = c.blur
        if self.judge is not None:
            rows = live_rows(batch)
            if rows:
                try:
                    js = self.judge.judge_images([batch["hq"][r] for r in rows])
                finally:
                    self.judge.flush()
                apply_judgements(self.name, c.judge, batch, rows, js, self.judge, section={"key": "judge"})
        return batch


class DedupStage(FilterStage):
    """Perceptual-hash near-duplicates: within each batch (lowest index kept) and against earlier runs.

    The reference index (earlier runs) is merged once on the driver and persisted as
    ``filters/<name>.reference.json`` in the run directory before any shard; workers and resumes load it.
    Cross-shard duplicates of the same run are found by the post-pass
    :func:`pairforge.filters.dedup.build_run_index` (see :mod:`pairforge.filters.dedup`)."""

    name = "dedup"
    _transient = ("reference",)

    def __init__(self, config: DedupFilterConfig, context: RunContext):
        super().__init__(config, context)
        self.reference: HashIndex | None = None
        self._reference_doc: bytes | None = None  # kept only when the run has no directory

    @property
    def needs_calibration(self) -> bool:  # type: ignore[override]
        return bool(self.config.reference)

    def _path(self) -> str:
        return f"filters/{self.name}.reference.json"

    def _load_reference(self) -> HashIndex:
        storage = self.context.run_storage()
        if storage is not None and storage.exists(self._path()):
            return HashIndex.from_json(storage.read_bytes(self._path()), self._path())
        if self._reference_doc is not None:
            return HashIndex.from_json(self._reference_doc)
        idx, info = load_reference(list(self.config.reference), self.config.hash)
        data = idx.to_json()
        if storage is not None:
            storage.write_bytes(self._path(), data)
        else:
            self._reference_doc = data
        log.info("stage %s: reference index of %d hashes from %s", self.name, len(idx), json.dumps(info))
        return idx

    def prepare(self, upstream) -> None:
        if self.config.reference:
            self.reference = self._load_reference()

    def setup(self) -> None:
        if self.config.reference and self.reference is None:
            self.reference = self._load_reference()

    def process(self, batch: Batch) -> Batch:
        c = self.config
        rows = live_rows(batch)
        hashes = [image_hashes(batch["hq"][r], c.hash, c.flip_invariant) for r in rows]
        for row, (h, hf) in zip(rows, hashes):
            _filters_meta(batch, row)[self.name] = hashes_record(h, hf, c.hash)
        matches = dedupe(
            [batch["index"][r] for r in rows],
            [batch["key"][r] for r in rows],
            hashes,
            c.max_distance,
            reference=self.reference,
            within=c.within_batch,
        )
        for row, m in zip(rows, matches):
            if m is not None:
                reject(
                    batch,
                    row,
                    Rejection(
                        self.name,
                        "near_duplicate",
                        f"near-duplicate of {m.kept} (hamming {m.distance}/64, {m.scope})",
                        {"kept": m.kept, "distance": m.distance, "scope": m.scope},
                    ),
                )
        return batch


class ClassifierStage(FilterStage):
    """The trained quality classifier: keep if P(high quality) >= min_prob."""

    name = "classifier"
    _transient = ("model",)

    def __init__(self, config: ClassifierFilterConfig, context: RunContext):
        super().__init__(config, context)
        self.model: QualityClassifier | None = None

    def setup(self) -> None:
        try:
            self.model = QualityClassifier.load(self.config.model)
        except (OSError, ValueError, KeyError) as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            raise ModelLoadError(
                f"filter {self.name}: the classifier model {self.config.model!r} cannot be loaded ({reason}); "
                "train it with `pairforge train-classifier`"
            ) from None

    def process(self, batch: Batch) -> Batch:
        rows = live_rows(batch)
        if not rows:
            return batch
        probs = self.model.predict_proba([batch["hq"][r] for r in rows])
        for row, p in zip(rows, probs):
            p = float(p)
            ok = p >= self.config.min_prob
            _filters_meta(batch, row)[self.name] = {"prob": round(p, 6), "min_prob": self.config.min_prob, "passed": ok}
            if not ok:
                reject(batch, row, Rejection(self.name, "low_quality", f"P(high quality) {p:.3f} < min_prob {self.config.min_prob}", p))
        return batch

