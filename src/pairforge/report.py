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


def dataset_info(storage: Storage) -> dict:
    """What a dataset directory holds, from its index (complete runs) or its commit records."""
    from pairforge.pipeline import ledger

    info: dict = {"url": storage.url}
    if storage.exists(ledger.RUN_JSON):
        run = json.loads(storage.read_bytes(ledger.RUN_JSON))
        info["run"] = {"name": run["config"]["run"]["name"], "seed": run["config"]["run"]["seed"], "planned_samples": run["config"]["run"]["num_samples"], "shards_planned": run.get("plan", {}).get("shards")}
    else:
        info["run"] = None
    records = ledger.committed_records(storage)
    info["committed_shards"] = len(records)
    info["samples"] = sum(r["samples"] for r in records.values())
    info["inputs"] = sum(r["end"] - r["start"] for r in records.values())
    info["bytes"] = sum(r["bytes"] for r in records.values())
    rejected: dict[str, int] = {}
    for r in records.values():
        for k, v in r.get("rejected_counts", {}).items():
            rejected[k] = rejected.get(k, 0) + v
    info["rejected"] = rejected
    info["complete"] = storage.exists(ledger.INDEX_JSON) and info["run"] is not None and info["committed_shards"] >= (info["run"]["shards_planned"] or 0)
    return info


def print_info(info: dict, console: Console) -> None:
    t = Table(title=f"pairforge dataset {info['url']}")
    t.add_column("what")
    t.add_column("value", justify="right")
    if info["run"]:
        t.add_row("run", f"{info['run']['name']} (seed {info['run']['seed']})")
        t.add_row("planned inputs", str(info["run"]["planned_samples"]))
    t.add_row("status", "complete" if info["complete"] else "incomplete (rerun `pairforge run` to resume)")
    t.add_row("committed shards", f"{info['committed_shards']}" + (f" / {info['run']['shards_planned']}" if info["run"] else ""))
    t.add_row("accepted pairs", str(info["samples"]))
    t.add_row("rejected", str(sum(info["rejected"].values())))
    t.add_row("size", f"{info['bytes'] / 1e6:.1f} MB")
    console.print(t)
    console.print(rejection_table(info["rejected"], info["inputs"], title="Rejections by stage/rule"))
