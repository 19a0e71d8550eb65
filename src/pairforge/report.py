"""Human-facing summaries of runs and datasets (rich tables), shared by the CLI commands."""
from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from pairforge.io.storage import Storage


def rejection_table(rejected: dict[str, int], total_inputs: int | None = None, title: str = "Rejected") -> Table:
    t = Table(title=title)
    t.add_column("stage/rule")
    t.add_column("samples", justify="right")
    if total_inputs:
        t.add_column("share", justify="right")
    for k, v in sorted(rejected.items(), key=lambda kv: -kv[1]):
        row = [k, str(v)]
        if total_inputs:
            row.append(f"{v / total_inputs:.1%}")
        t.add_row(*row)
    if not rejected:
        t.add_row("(none)", "0", *([""] if total_inputs else []))
    return t


def dataset_info(storage: Storage, breakdown: bool = True) -> dict:
    """What a dataset directory holds, from its commit records; with ``breakdown``, counts by degradation
    type and severity and by source, from the samples' metadata (streamed; no image is read)."""
    from pairforge.io.dataset import DatasetReader
    from pairforge.pipeline import ledger

    info: dict = {"url": storage.url}
    if storage.exists(ledger.RUN_JSON):
        run = json.loads(storage.read_bytes(ledger.RUN_JSON))
        info["run"] = {"name": run["config"]["run"]["name"], "seed": run["config"]["run"]["seed"], "planned_samples": run["config"]["run"]["num_samples"], "shards_planned": run.get("plan", {}).get("shards")}
    else:
        info["run"] = None
    reader = DatasetReader(storage)
    records = reader.records()
    info["problems"] = [str(p) for p in reader.problems]
    info["modified_after_commit"] = list(reader.scan.newer)
    info["layout"] = "+".join(sorted(reader.layouts())) or None
    info["committed_shards"] = len(records)
    info["samples"] = sum(r["samples"] for r in records)
    info["inputs"] = sum(r["end"] - r["start"] for r in records)
    info["bytes"] = sum(r["bytes"] for r in records)
    rejected: dict[str, int] = {}
    for r in records:
        for k, v in r.get("rejected_counts", {}).items():
            rejected[k] = rejected.get(k, 0) + v
    info["rejected"] = rejected
    info["complete"] = storage.exists(ledger.INDEX_JSON) and info["run"] is not None and info["committed_shards"] >= (info["run"]["shards_planned"] or 0)
    if breakdown:
        info.update(metadata_breakdown(reader))
    return info


def metadata_breakdown(reader) -> dict:
    """Counts from every committed sample's JSON: LQs by degradation (``haze`` / ``chain realesrgan``),
    by type and severity (a stacked LQ counts once for each of its types), samples by source, and how
    many samples have K LQ variants."""
    from pairforge.io.dataset import META, sample_meta
    from pairforge.io.provenance import degradations, source_label

    by_degradation: dict[str, int] = {}
    by_severity: dict[str, dict[str, int]] = {}
    sources: dict[str, int] = {}
    variants: dict[str, int] = {}
    for s in reader.iter_samples({META}):
        try:
            meta = sample_meta(s)
        except ValueError:
            meta = {}
        src = source_label(meta)
        sources[src] = sources.get(src, 0) + 1
        degs = degradations(meta)
        variants[str(len(degs))] = variants.get(str(len(degs)), 0) + 1
        for d in degs:
            name = d.preset if d.preset else ("+".join(d.types) if d.types else d.model)
            by_degradation[name] = by_degradation.get(name, 0) + 1
            for t, sev in d.components:
                row = by_severity.setdefault(t, {})
                row[sev or "-"] = row.get(sev or "-", 0) + 1
    return {
        "degradations": dict(sorted(by_degradation.items(), key=lambda kv: (-kv[1], kv[0]))),
        "degradation_severity": {t: dict(sorted(v.items())) for t, v in sorted(by_severity.items())},
        "sources": dict(sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))),
        "lq_variants": dict(sorted(variants.items(), key=lambda kv: int(kv[0]))),
    }


SEVERITY_ORDER = ("light", "medium", "heavy")


def _count_table(title: str, counts: dict[str, int], label: str, max_rows: int = 25) -> Table:
    t = Table(title=title)
    t.add_column(label)
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    total = sum(counts.values()) or 1
    items = list(counts.items())
    for k, v in items[:max_rows]:
        t.add_row(k, str(v), f"{v / total:.1%}")
    if len(items) > max_rows:
        rest = sum(v for _k, v in items[max_rows:])
        t.add_row(f"({len(items) - max_rows} more)", str(rest), f"{rest / total:.1%}")
    return t


def severity_table(by_severity: dict[str, dict[str, int]]) -> Table:
    levels = [s for s in SEVERITY_ORDER if any(s in row for row in by_severity.values())]
    levels += sorted({s for row in by_severity.values() for s in row} - set(levels) - {"-"})
    if any("-" in row for row in by_severity.values()):
        levels.append("-")
    t = Table(title="LQs by degradation type and severity")
    t.add_column("type")
    for s in levels:
        t.add_column("no severity" if s == "-" else s, justify="right")
    t.add_column("total", justify="right")
    for typ, row in by_severity.items():
        t.add_row(typ, *[str(row.get(s, 0)) for s in levels], str(sum(row.values())))
    return t


def print_info(info: dict, console: Console) -> None:
    for p in info.get("problems", []):
        console.print(f"[yellow]warning:[/] {p}", highlight=False, soft_wrap=True)
    newer = info.get("modified_after_commit") or []
    if newer:
        console.print(f"[yellow]warning:[/] {len(newer)} data file(s) were modified after their shard was committed "
                      f"(first: {newer[0]}); run `pairforge verify {info['url']}` to check their hashes", highlight=False, soft_wrap=True)
    t = Table(title=f"pairforge dataset {info['url']}")
    t.add_column("what")
    t.add_column("value", justify="right")
    if info["run"]:
        t.add_row("run", f"{info['run']['name']} (seed {info['run']['seed']})")
        t.add_row("planned inputs", str(info["run"]["planned_samples"]))
    t.add_row("status", "complete" if info["complete"] else "incomplete (rerun `pairforge run` to resume)")
    if info.get("layout"):
        t.add_row("layout", info["layout"])
    t.add_row("committed shards", f"{info['committed_shards']}" + (f" / {info['run']['shards_planned']}" if info["run"] else ""))
    t.add_row("accepted pairs", str(info["samples"]))
    variants = {int(k): v for k, v in (info.get("lq_variants") or {}).items() if int(k) > 1}
    if variants:
        t.add_row("LQ variants per pair", ", ".join(f"{k}: {v} pairs" for k, v in sorted(variants.items())))
    t.add_row("rejected", str(sum(info["rejected"].values())))
    t.add_row("size", f"{info['bytes'] / 1e6:.1f} MB")
    console.print(t)
    console.print(rejection_table(info["rejected"], info["inputs"], title="Rejections by stage/rule"))
    if info.get("degradations"):
        console.print(_count_table("LQs by degradation", info["degradations"], "degradation"))
    if info.get("degradation_severity") and any(set(row) != {"-"} for row in info["degradation_severity"].values()):
        console.print(severity_table(info["degradation_severity"]))
    if info.get("sources"):
        console.print(_count_table("Pairs by source", info["sources"], "source"))
