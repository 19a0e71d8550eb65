"""Render the run report: one self-contained HTML file (jinja2 template shipped in the package; every
chart and picture embedded as a data URI; no script, no stylesheet or font from anywhere else)."""
from __future__ import annotations

import datetime as dt
import time
from importlib import resources

import jinja2

from pairforge.io.dataset import DatasetReader
from pairforge.io.storage import Storage
from pairforge.report import SEVERITY_ORDER
from pairforge.runreport import plots
from pairforge.runreport.collect import RunData, collect, describe_config
from pairforge.runreport.gallery import load_pictures

REPORT_NAME = "report.html"


TEMPLATE = "report.html.j2"


class _BestEffortBytecodeCache(jinja2.FileSystemBytecodeCache):
    """jinja2's file cache, except that failing to read or write it (a full disk, a temp cleaner that
    removed the directory) only costs compiling the template again, never the report."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiling the template costs ~50 ms, a sixth of a one-photo `degrade`; jinja2 keeps the compiled
    code in a per-user temp directory it creates private (keyed by the template's source checksum, so
    an edited template recompiles). Without a usable temp directory every run compiles."""
    try:
        return _BestEffortBytecodeCache()
    except (OSError, RuntimeError):
        return None


def _env() -> jinja2.Environment:
    text = resources.files("pairforge.runreport").joinpath(f"templates/{TEMPLATE}").read_text("utf-8")
    env = jinja2.Environment(loader=jinja2.DictLoader({TEMPLATE: text}), bytecode_cache=_bytecode_cache(),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: f"{x:.1%}"
    env.filters["num"] = lambda x: f"{x:,}" if isinstance(x, int) else f"{x:.4g}"
    return env


def _when(ts) -> str:
    if not isinstance(ts, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def run_section(data: RunData) -> dict:
    run = data.run or {}
    sessions = [s for s in run.get("sessions") or [] if isinstance(s, dict)]
    wall = sum(float(s.get("seconds") or 0) for s in sessions) if sessions else None
    made = sum(int(s.get("accepted") or 0) for s in sessions)
    total_stage = sum(data.stage_seconds.values())
    return {
        "config": describe_config(data.config),
        "versions": run.get("versions") or {},
        "git": run.get("git_revision") or "unknown (not run from a git checkout)",
        "created": _when(run.get("created")),
        "argv": " ".join(run.get("argv") or []),
        "wall": _duration(wall) if wall is not None else "unknown (no finished session recorded in run.json)",
        "pairs_per_s": f"{made / wall:.2f}" if wall else "-",
        "sessions": [{"finished": _when(s.get("finished")), "seconds": _duration(s.get("seconds")),
                      "shards": s.get("shards_written"), "inputs": s.get("inputs"), "accepted": s.get("accepted"),
                      "executor": s.get("executor", "-")} for s in sessions],
        "resumes": [_when(r.get("at")) for r in run.get("resumes") or [] if isinstance(r, dict)],
        "stage_rows": [(k, _duration(v), v / total_stage if total_stage else 0.0)
                       for k, v in sorted(data.stage_seconds.items(), key=lambda kv: -kv[1])],
        "stage_chart": plots.barh({k: v for k, v in data.stage_seconds.items()}, "Worker time by stage (all shards)",
                                  xlabel="seconds", fmt="{:.1f} s", total=total_stage) if total_stage else None,
    }


def accounting_section(data: RunData) -> dict:
    counts = {"accepted": data.accepted, **data.rejected}
    colors = {k: (plots.ACCEPT if k == "accepted" else plots.REJECT) for k in counts}
    rows = [{"tag": tag, "n": n, "share": n / data.inputs if data.inputs else 0.0, "reason": data.rejected_reasons.get(tag, "")}
            for tag, n in sorted(data.rejected.items(), key=lambda kv: -kv[1])]
    return {
        "inputs": data.inputs, "accepted": data.accepted, "rejected": sum(data.rejected.values()),
        "rows": rows,
        "chart": plots.barh(counts, "Inputs by outcome", colors=colors, xlabel="inputs", total=data.inputs or None) if data.inputs else None,
    }


def filters_section(data: RunData) -> list[dict]:
    out = []
    stages = list(data.filter_kinds) + sorted({s for s, _ in data.metrics} - set(data.filter_kinds))
    for stage in stages:
        kind = data.filter_kinds.get(stage, "?")
        charts = []
        for (st, name), ms in data.metrics.items():
            if st != stage or not (ms.accepted.n or ms.rejected.n):
                continue
            label = ""
            if ms.threshold is not None:
                if ms.rule == "keep_top":
                    label = f"keep top {ms.keep_top:.0%} → {ms.threshold:.4g}"
                else:
                    label = f"{ms.rule or 'threshold'} {ms.threshold:.4g}"
            better = "" if ms.lower_better is None else (" (lower is better)" if ms.lower_better else " (higher is better)")
            note = (f"{label}; " if label else "") + f"{ms.accepted.n} accepted, {ms.rejected.n} rejected by this rule"
            if max(ms.accepted.n, ms.rejected.n) > len(ms.accepted.values) + len(ms.rejected.values):
                note += "; histogram of a uniform sample"
            charts.append({"title": f"{stage}: {name}", "note": note,
                           "uri": plots.histogram(ms.accepted.values, ms.rejected.values, f"{stage} · {name}{better}",
                                                  ms.threshold, label, xlabel=name)})
        rejected = {t: n for t, n in data.rejected.items() if t.split("/", 1)[0] == stage}
        out.append({
            "stage": stage, "kind": kind, "charts": charts, "rejected": rejected,
            "verdicts": data.judge_verdicts.get(stage), "cost": data.judge_cost.get(stage), "dedup": data.dedup.get(stage),
        })
    return out


def degradation_section(data: RunData) -> dict:
    strength = {t: v for t, v in sorted(data.strength.items()) if v["psnr"].values}
    return {
        "lqs": data.lqs,
        "by_model": sorted(data.by_model.items(), key=lambda kv: -kv[1]),
        "by_group": sorted(data.by_group.items(), key=lambda kv: -kv[1]),
        "stacked": sorted(((k, v) for k, v in data.by_label.items() if "+" in k), key=lambda kv: (-kv[1], kv[0])),
        "type_chart": plots.barh(data.by_type, "LQs by degradation type (a stacked LQ counts for each of its types)"
                                 if any("+" in k for k in data.by_label) else "LQs by degradation type",
                                 xlabel="LQs", total=data.lqs or None) if data.by_type else None,
        "severity_chart": plots.severity_bars(data.by_severity, SEVERITY_ORDER)
        if any(set(r) != {"-"} for r in data.by_severity.values()) else None,
        "psnr_chart": plots.distributions({t: v["psnr"].values for t, v in strength.items()}, "PSNR of LQ vs HQ by type", "PSNR (dB)") if strength else None,
        "ssim_chart": plots.distributions({t: v["ssim"].values for t, v in strength.items() if v["ssim"].values}, "SSIM of LQ vs HQ by type", "SSIM")
        if any(v["ssim"].values for v in strength.values()) else None,
        "strength_source": data.strength_source,
        "params_chart": plots.small_histograms({k: r.values for k, r in data.chain_params.items()}, "Sampled chain parameters (per op)")
        if data.chain_params else None,
        "lq_sizes": sorted(data.lq_sizes.items(), key=lambda kv: -kv[1])[:8],
        "hq_sizes": sorted(data.hq_sizes.items(), key=lambda kv: -kv[1])[:8],
    }


def rejected_gallery(data: RunData) -> list[dict]:
    out = []
    for tag in sorted(data.rejected_thumbs, key=lambda t: -data.rejected.get(t, 0)):
        items = sorted(data.rejected_thumbs[tag].values)
        out.append({"tag": tag, "total": data.rejected.get(tag, 0),
                    "thumbs": [{"key": k, "uri": f"data:image/jpeg;base64,{b64}", "reason": reason} for k, b64, reason in items]})
    return out


def prompts_section(data: RunData) -> dict | None:
    if not data.prompts.n and not data.prompt_sources and not data.prompt_bank:
        return None
    return {"sources": sorted(data.prompt_sources.items(), key=lambda kv: -kv[1]), "bank": data.prompt_bank or {},
            "sample": sorted(data.prompts.values), "n": data.prompts.n}


def render_report(storage: Storage, data: RunData | None = None, seed: int = 0) -> str:
    """The report of the run directory ``storage`` as HTML text (``data``: already collected statistics)."""
    t0 = time.perf_counter()
    if data is None:
        data = collect(storage, seed)
    gallery = load_pictures(data, DatasetReader(storage))
    ctx = {
        "title": f"pairforge run report: {(data.config.get('run') or {}).get('name') or data.url}",
        "url": data.url,
        "generated": _when(time.time()),
        "complete": data.complete,
        "problems": data.problems,
        "layout": data.layout,
        "shards": data.shards,
        "bytes": data.bytes,
        "run": run_section(data),
        "accounting": accounting_section(data),
        "filters": filters_section(data),
        "degradations": degradation_section(data),
        "gallery": gallery,
        "rejected_gallery": rejected_gallery(data),
        "prompts": prompts_section(data),
        "sources": sorted(data.sources.items(), key=lambda kv: -kv[1])[:30],
        "seconds": None,
    }
    template = _env().get_template(TEMPLATE)
    ctx["seconds"] = f"{time.perf_counter() - t0:.1f}"
    return template.render(**ctx)


def write_report(storage: Storage, out: str | None = None, data: RunData | None = None) -> str:
    """Write the report into the run directory (``report.html``) or to the local file ``out``; returns
    where it went."""
    text = render_report(storage, data)
    if out is None:
        storage.write_bytes(REPORT_NAME, text.encode("utf-8"))
        return storage.uri(REPORT_NAME)
    from pathlib import Path

    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return str(p)

