"""Everything the run report and the dataset card show, gathered in bounded memory.

One pass over the commit records (accounting, stage timings, rejection values, rejected thumbnails) and
one streaming pass over every sample's JSON (filter scores, degradation types, severities, sampled chain
parameters, sources, prompts); no image is read in these passes. Distributions are kept as fixed-size
uniform reservoirs (exact counts, min and max alongside), galleries as a fixed number of picks per group,
so memory does not grow with the run. Images are read afterwards only for the picked samples
(:mod:`pairforge.runreport.gallery`).

Metadata is read defensively: fields a degrader or filter does not record are simply absent from the
report, and unknown shapes are counted as ``unknown`` rather than failing.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from pairforge.io.dataset import META, DatasetReader, sample_meta
from pairforge.io.provenance import Degradation, degradations, source_label
from pairforge.io.storage import Storage
from pairforge.io.thumbnails import RECORD_FIELD as THUMB_FIELD

#: values kept per distribution (histograms are drawn from this uniform sample; counts stay exact)
RESERVOIR = 20_000
#: HQ|LQ pairs shown per degradation type
GALLERY_PER_TYPE = 4
#: rejected thumbnails shown per rejection reason
REJECTED_PER_REASON = 8
#: pairs per degradation type whose PSNR/SSIM is measured when the degrader did not record it
STRENGTH_PER_TYPE = 48
#: prompts shown for a synthesis run
PROMPT_SAMPLE = 12
#: the most numeric fields per non-IQA filter turned into histograms
MAX_FILTER_FIELDS = 6
#: sampled parameters of chain ops that the report plots: op -> [(label, path in the op record)]
CHAIN_PARAMS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "blur": [("sigma", ("kernel", "sigma_x"))],
    "gaussian_noise": [("sigma", ("sigma",))],
    "poisson_noise": [("scale", ("scale",))],
    "jpeg": [("quality", ("quality",))],
    "webp": [("quality", ("quality",))],
    "resize": [("scale", ("scale",))],
}
#: filter config field -> (metadata field it thresholds, what "passing" means) for non-IQA filters
FILTER_THRESHOLDS = {
    "sanity": {"min_std": "luma_std", "max_clipped": "clipped_fraction", "max_aspect": "aspect"},
    "classifier": {"min_prob": "prob"},
}
#: rejection rule -> the metadata field its value measures, for non-IQA filters (IQA rules are metric names)
REJECTION_FIELDS = {
    "sanity": {"flat": "luma_std", "saturated": "clipped_fraction", "aspect": "aspect"},
    "classifier": {"low_quality": "prob"},
}


class Reservoir:
    """A uniform sample of at most ``k`` values of a stream, with the exact count, min and max."""

    def __init__(self, k: int = RESERVOIR, seed: int = 0):
        self.k = k
        self.values: list = []
        self.n = 0
        self.min: float | None = None
        self.max: float | None = None
        self._rng = random.Random(seed)

    def add(self, x) -> None:
        self.n += 1
        if isinstance(x, (int, float)):
            self.min = x if self.min is None else min(self.min, x)
            self.max = x if self.max is None else max(self.max, x)
        if len(self.values) < self.k:
            self.values.append(x)
        else:
            j = self._rng.randrange(self.n)
            if j < self.k:
                self.values[j] = x


def _number(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _dig(d, path: tuple[str, ...]):
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


@dataclass
class MetricStats:
    """One filter score: accepted values (from the samples' JSON), rejected values (from the records)."""

    accepted: Reservoir = field(default_factory=Reservoir)
    rejected: Reservoir = field(default_factory=Reservoir)
    threshold: float | None = None
    rule: str | None = None  # threshold | keep_top
    keep_top: float | None = None
    lower_better: bool | None = None


@dataclass
class RunData:
    """What the report shows (see the module docstring)."""

    url: str
    run: dict | None = None
    index: dict | None = None
    problems: list[str] = field(default_factory=list)
    # accounting, from the records
    shards: int = 0
    inputs: int = 0
    accepted: int = 0
    bytes: int = 0
    layout: str | None = None
    rejected: dict[str, int] = field(default_factory=dict)
    rejected_reasons: dict[str, str] = field(default_factory=dict)  # tag -> one example reason
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rejected_thumbs: dict[str, Reservoir] = field(default_factory=dict)  # tag -> (key, b64, reason)
    dedup_kept: set = field(default_factory=set)
    # filters, from the samples' JSON (+ rejection values)
    metrics: dict[tuple[str, str], MetricStats] = field(default_factory=dict)  # (stage, field) -> stats
    filter_kinds: dict[str, str] = field(default_factory=dict)  # stage name -> kind
    judge_verdicts: dict[str, dict[str, int]] = field(default_factory=dict)
    judge_cost: dict[str, dict] = field(default_factory=dict)
    dedup: dict[str, dict] = field(default_factory=dict)
    # degradations
    lqs: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    by_label: dict[str, int] = field(default_factory=dict)  # exact: "haze", "blur+noise", "realesrgan"
    by_type: dict[str, int] = field(default_factory=dict)  # per component: a stacked LQ counts for each type
    by_group: dict[str, int] = field(default_factory=dict)  # single types, and STACKED for 2+ types
    by_severity: dict[str, dict[str, int]] = field(default_factory=dict)
    strength: dict[str, dict[str, Reservoir]] = field(default_factory=dict)  # type -> psnr/ssim
    strength_source: dict[str, str] = field(default_factory=dict)  # type -> "recorded" | "measured"
    chain_params: dict[str, Reservoir] = field(default_factory=dict)  # "blur1 sigma" -> values
    gallery_picks: dict[str, Reservoir] = field(default_factory=dict)  # label -> (key, variant)
    strength_picks: dict[str, Reservoir] = field(default_factory=dict)  # type -> (key, variant)
    # sources and prompts
    sources: dict[str, int] = field(default_factory=dict)
    prompt_sources: dict[str, int] = field(default_factory=dict)
    prompts: Reservoir = field(default_factory=lambda: Reservoir(PROMPT_SAMPLE, seed=1))
    prompt_bank: dict | None = None
    lq_sizes: dict[str, int] = field(default_factory=dict)
    hq_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return (self.run or {}).get("config") or {}

    @property
    def complete(self) -> bool:
        planned = ((self.run or {}).get("plan") or {}).get("shards")
        return self.index is not None and planned is not None and self.shards >= planned


def _read_json(storage: Storage, name: str):
    if not storage.exists(name):
        return None
    try:
        return json.loads(storage.read_bytes(name))
    except ValueError:
        return None


def _count(d: dict, k: str, n: int = 1) -> None:
    d[k] = d.get(k, 0) + n


#: the group of LQs made by two or more stacked real-world types (their strength mixes the types)
STACKED = "stacked (2+ types)"


def degradation_group(d: Degradation) -> str:
    """The report's group of an LQ: its one type or chain preset, or :data:`STACKED`."""
    if d.preset:
        return d.preset
    types = list(dict.fromkeys(d.types))
    if len(types) > 1:
        return STACKED
    return types[0] if types else d.model


def degradation_type(d: Degradation) -> str:
    """The report's type of an LQ: its real-world type(s) (``blur``, ``blur+noise``) or chain preset."""
    if d.preset:
        return d.preset
    if d.types:
        return "+".join(d.types)
    return d.model


def collect(storage: Storage, seed: int = 0) -> RunData:
    """Gather a run directory's statistics (see the module docstring)."""
    data = RunData(url=storage.url)
    data.run = _read_json(storage, "run.json")
    data.index = _read_json(storage, "index.json")
    data.prompt_bank = _read_json(storage, "prompts/bank.json")
    for f in data.config.get("filters") or []:
        if isinstance(f, dict):
            data.filter_kinds[f.get("name") or f.get("kind")] = f.get("kind")
    reader = DatasetReader(storage)
    data.problems = [str(p) for p in reader.problems]
    _collect_records(data, reader, seed)
    _collect_samples(data, reader, seed)
    _collect_post_run(data, storage)
    return data


def _collect_records(data: RunData, reader: DatasetReader, seed: int) -> None:
    layouts = set()
    for rec in reader.records():
        data.shards += 1
        data.inputs += rec["end"] - rec["start"]
        data.accepted += rec["samples"]
        data.bytes += rec.get("bytes") or 0
        if rec["samples"]:
            layouts.add(rec.get("layout") or "webdataset")
        for k, v in (rec.get("stage_seconds") or {}).items():
            if _number(v) is not None:
                data.stage_seconds[k] = data.stage_seconds.get(k, 0.0) + float(v)
        if _number(rec.get("write_seconds")) is not None:
            data.stage_seconds["writer"] = data.stage_seconds.get("writer", 0.0) + float(rec["write_seconds"])
        thumbs = rec.get(THUMB_FIELD) or {}
        for r in rec.get("rejected") or []:
            if not isinstance(r, dict):
                continue
            stage, rule = str(r.get("stage")), str(r.get("rule"))
            tag = f"{stage}/{rule}"
            _count(data.rejected, tag)
            data.rejected_reasons.setdefault(tag, str(r.get("reason") or ""))
            value = _number(r.get("value"))
            kind = data.filter_kinds.get(stage)
            fieldname = rule if kind == "iqa" else REJECTION_FIELDS.get(kind or "", {}).get(rule)
            if value is not None and fieldname is not None:
                data.metrics.setdefault((stage, fieldname), MetricStats()).rejected.add(value)
            elif isinstance(r.get("value"), dict) and r["value"].get("kept"):
                data.dedup_kept.add((stage, str(r["value"]["kept"])))
            thumb = thumbs.get(r.get("key"))
            if isinstance(thumb, str):
                res = data.rejected_thumbs.setdefault(tag, Reservoir(REJECTED_PER_REASON, seed))
                res.add((str(r.get("key")), thumb, str(r.get("reason") or "")))
    data.layout = "+".join(sorted(layouts)) or None


def _collect_samples(data: RunData, reader: DatasetReader, seed: int) -> None:
    for s in reader.iter_samples({META}):
        try:
            meta = sample_meta(s)
        except ValueError:
            meta = {}
        key = s["__key__"]
        _count(data.sources, source_label(meta))
        src = meta.get("source") if isinstance(meta.get("source"), dict) else {}
        if src.get("prompt_source"):
            _count(data.prompt_sources, str(src["prompt_source"]))
        if isinstance(src.get("prompt"), str) and src["prompt"]:
            data.prompts.add((key, src["prompt"], str(src.get("prompt_origin") or "")))
        hq = meta.get("hq_size")
        if isinstance(hq, list) and len(hq) == 2:
            _count(data.hq_sizes, f"{hq[1]}x{hq[0]}")
        _collect_filters(data, meta.get("filters"))
        deg = meta.get("degradation")
        variants = deg if isinstance(deg, list) else [deg]
        lq_sizes = meta.get("lq_size")
        for k, d in enumerate(degradations(meta)):
            data.lqs += 1
            typ = degradation_group(d)
            _count(data.by_model, d.model)
            _count(data.by_label, degradation_type(d))
            _count(data.by_group, typ)
            for t in dict.fromkeys(d.types if not d.preset and d.types else [typ]):
                _count(data.by_type, t)
            for t, sev in d.components:
                row = data.by_severity.setdefault(t, {})
                _count(row, sev or "-")
            variant = k if isinstance(deg, list) else None
            data.gallery_picks.setdefault(typ, Reservoir(GALLERY_PER_TYPE, seed)).add((key, variant))
            raw = variants[k] if k < len(variants) and isinstance(variants[k], dict) else {}
            strength = raw.get("strength") if isinstance(raw.get("strength"), dict) else None
            if strength is not None and _number(strength.get("psnr")) is not None:
                per = data.strength.setdefault(typ, {"psnr": Reservoir(), "ssim": Reservoir()})
                per["psnr"].add(float(strength["psnr"]))
                if _number(strength.get("ssim")) is not None:
                    per["ssim"].add(float(strength["ssim"]))
                data.strength_source[typ] = "recorded"
            else:
                data.strength_picks.setdefault(typ, Reservoir(STRENGTH_PER_TYPE, seed)).add((key, variant))
            if d.preset or d.model == "simple":
                _collect_chain_params(data, raw)
        sizes = lq_sizes if isinstance(lq_sizes, list) and lq_sizes and isinstance(lq_sizes[0], list) else [lq_sizes]
        for size in sizes:  # every LQ variant
            if isinstance(size, list) and len(size) == 2:
                _count(data.lq_sizes, f"{size[1]}x{size[0]}")


def _collect_filters(data: RunData, filters) -> None:
    if not isinstance(filters, dict):
        return
    for stage, rec in filters.items():
        if not isinstance(rec, dict):
            continue
        kind = data.filter_kinds.get(stage)
        if kind == "judge" or "usage" in rec and "passed" in rec:
            verdict = "unjudged (accepted by policy)" if rec.get("unjudged") else "passed"
            _count(data.judge_verdicts.setdefault(stage, {}), verdict)
            continue
        if kind == "iqa" or any(isinstance(v, dict) and "score" in v for v in rec.values()):
            for metric, entry in rec.items():
                if not isinstance(entry, dict) or _number(entry.get("score")) is None:
                    continue
                ms = data.metrics.setdefault((stage, metric), MetricStats())
                ms.accepted.add(float(entry["score"]))
                if _number(entry.get("threshold")) is not None:
                    ms.threshold = float(entry["threshold"])
                ms.rule = entry.get("rule") or ms.rule
                ms.keep_top = entry.get("keep_top", ms.keep_top)
                ms.lower_better = entry.get("lower_better", ms.lower_better)
            continue
        fields = [k for k, v in rec.items() if _number(v) is not None][:MAX_FILTER_FIELDS]
        for k in fields:
            data.metrics.setdefault((stage, k), MetricStats()).accepted.add(float(rec[k]))


def _collect_chain_params(data: RunData, deg: dict) -> None:
    ops = deg.get("ops")
    if not isinstance(ops, list):
        return
    for op in ops:
        if not isinstance(op, dict) or op.get("applied") is False:
            continue
        for label, path in CHAIN_PARAMS.get(str(op.get("op")), []):
            v = _number(_dig(op, path))
            if v is not None:
                name = f"{op.get('name') or op.get('op')} {label}"
                data.chain_params.setdefault(name, Reservoir()).add(v)


def _collect_post_run(data: RunData, storage: Storage) -> None:
    """Judge usage (the usage log, usage/<stage>/) and whole-run dedup (the runner's post-pass), and the
    thresholds of non-IQA filters from the config."""
    for f in data.config.get("filters") or []:
        if not isinstance(f, dict):
            continue
        name, kind = f.get("name") or f.get("kind"), f.get("kind")
        for opt, fieldname in FILTER_THRESHOLDS.get(kind, {}).items():
            ms = data.metrics.get((name, fieldname))
            if ms is not None and _number(f.get(opt)) is not None:
                ms.threshold = float(f[opt])
                ms.rule = opt
        if kind == "judge":
            from pairforge.llm.usage import summarize_usage

            try:
                data.judge_cost[name] = summarize_usage(storage, name)
            except (OSError, ValueError, KeyError):
                data.judge_cost[name] = {}
            verdicts = data.judge_verdicts.setdefault(name, {})
            for tag, n in data.rejected.items():
                stage, _, rule = tag.partition("/")
                if stage == name:
                    _count(verdicts, f"rejected: {rule}", n)
        if kind == "dedup":
            within = {kept for st, kept in data.dedup_kept if st == name}
            dups = _read_json(storage, "dedup/duplicates.json") or {}
            cross = dups.get("duplicates") if isinstance(dups.get("duplicates"), list) else []
            clusters = within | {str(d.get("duplicate_of")) for d in cross if isinstance(d, dict)}
            data.dedup[name] = {
                "clusters": len(clusters),
                "rejected_in_workers": sum(n for t, n in data.rejected.items() if t.startswith(f"{name}/")),
                "cross_shard_duplicates": len(cross),
                "post_pass": bool(dups),
            }


def describe_config(config: dict) -> list[tuple[str, str]]:
    """The config in a few lines: source, filters, degradation, output."""
    out: list[tuple[str, str]] = []
    run = config.get("run") or {}
    out.append(("run", f"{run.get('name')} (seed {run.get('seed')}, device {run.get('device')})"))
    src = config.get("source") or {}
    out.append(("source", _brief(src, ("resources",))))
    for f in config.get("filters") or []:
        out.append((f"filter {f.get('name') or f.get('kind')}", _brief(f, ("resources", "name"))))
    out.append(("degrade", _brief(config.get("degrade") or {}, ("resources",))))
    out.append(("output", _brief(config.get("output") or {}, ())))
    return out


def _brief(d: dict, drop: tuple[str, ...], limit: int = 400) -> str:
    items = {k: v for k, v in d.items() if k not in drop and v not in (None, [], {})}
    text = json.dumps(items, sort_keys=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jsonish(x: Any, limit: int = 600) -> str:
    text = json.dumps(x, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
