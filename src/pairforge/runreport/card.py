"""The dataset card: ``DIR/README.md`` with Hugging Face dataset-card YAML front matter and prose made
from the run, so the run directory can be uploaded to a dataset hub as it is.

The front matter holds the license (``output.license``), ``task_categories: [image-to-image]``, the size
category of the pair count, and a ``configs:`` entry whose ``data_files`` are the shard tars, which the
hub (and ``datasets.load_dataset(DIR)``) reads with the webdataset builder. A folder-layout run has no
such entry: its files are not a format the hub's builders pair up.
"""
from __future__ import annotations

import json

import yaml

from pairforge.io.dataset import SHARD_DIR
from pairforge.io.storage import Storage
from pairforge.runreport.collect import STACKED, RunData, collect, describe_config

CARD_NAME = "README.md"
#: the hub's size categories, by upper bound of the number of examples
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


def size_category(n: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1B"


def front_matter(data: RunData) -> dict:
    output = data.config.get("output") or {}
    name = (data.config.get("run") or {}).get("name") or "pairforge"
    fm: dict = {
        "license": output.get("license") or "other",
        "task_categories": ["image-to-image"],
        "size_categories": [size_category(data.accepted)],
        "tags": ["image-restoration", "super-resolution", "paired-data", "synthetic-degradation", "pairforge"],
        "pretty_name": f"pairforge {name}",
    }
    if (data.layout or "webdataset") == "webdataset":
        fm["configs"] = [{"config_name": "default", "default": True,
                          "data_files": [{"split": "train", "path": f"{SHARD_DIR}/*.tar"}]}]
    return fm


def _shard_pattern(data: RunData) -> str:
    ids = sorted(int(s["shard"]) for s in (data.index or {}).get("shards") or [] if isinstance(s, dict) and "shard" in s)
    if ids and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{SHARD_DIR}/shard-{{{ids[0]:06d}..{ids[-1]:06d}}}.tar"
    return f"{SHARD_DIR}/shard-*.tar"


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
    return "\n".join(lines)


def render_card(storage: Storage | None = None, data: RunData | None = None) -> str:
    """The card's text (front matter + prose) for a run directory."""
    if data is None:
        if storage is None:
            raise ValueError("render_card needs a storage or collected run data")
        data = collect(storage)
    cfg = data.config
    run = data.run or {}
    name = (cfg.get("run") or {}).get("name") or "pairforge"
    fm = yaml.safe_dump(front_matter(data), sort_keys=False, allow_unicode=True).strip()
    versions = run.get("versions") or {}
    out = [f"---\n{fm}\n---\n", f"# pairforge {name}: paired image-restoration data\n"]
    rejected = sum(data.rejected.values())
    out.append(
        f"{data.accepted:,} clean/degraded image pairs (HQ and LQ) made by "
        f"pairforge {versions.get('pairforge', '')} from {data.inputs:,} inputs "
        f"({rejected:,} rejected, each with its reason), in {data.shards} "
        f"{'WebDataset tar shards' if (data.layout or 'webdataset') == 'webdataset' else 'committed shards (folder layout)'}"
        f" ({data.bytes / 1e6:.1f} MB)."
        + ("" if data.complete else " **The run is incomplete**: rerun `pairforge run` with the same config to finish it.")
        + " Open `report.html` (next to this file) in a browser for the run report: score distributions, rejected"
        " inputs, degradation strength and a gallery of pairs.\n"
    )
    out.append("## Sources\n")
    src = cfg.get("source") or {}
    out.append(f"Source: `{json.dumps({k: v for k, v in src.items() if k != 'resources'}, default=str)}`.\n")
    if data.sources:
        out.append(_table(sorted(data.sources.items(), key=lambda kv: -kv[1])[:15], ("source", "pairs")) + "\n")
    if data.prompt_sources:
        out.append("Prompts: " + ", ".join(f"{k} ({v:,} samples)" for k, v in data.prompt_sources.items())
                   + "; the prompt of a sample is in `KEY.txt` and in `KEY.json` under `source.prompt`.\n")
    out.append("## Filters\n")
    filters = cfg.get("filters") or []
    if not filters:
        out.append("No filter: every input that could be decoded was degraded.\n")
    for f in filters:
        fname = f.get("name") or f.get("kind")
        n = sum(v for t, v in data.rejected.items() if t.split("/", 1)[0] == fname)
        brief = {k: v for k, v in f.items() if k not in ("resources", "name") and v not in (None, [], {})}
        out.append(f"- **{fname}** ({f.get('kind')}): rejected {n:,}. `{json.dumps(brief, default=str)}`")
    out.append("")
    out.append("## Degradation model\n")
    deg = cfg.get("degrade") or {}
    head = f"`kind: {deg.get('kind')}`" + (f", preset `{deg['preset']}`" if deg.get("preset") else "")
    section = yaml.safe_dump({"degrade": {k: v for k, v in deg.items() if k != "resources"}}, sort_keys=False).strip()
    out.append(f"{head}.\n\n<details><summary>The full degrade section of the config</summary>\n\n```yaml\n{section}\n```\n</details>\n")
    out.append("Every random draw is per sample, seeded from the run seed and the sample index; each sample's "
               "JSON records the exact degradation with every sampled parameter.\n")
    if data.by_type:
        out.append(_table(sorted(data.by_type.items(), key=lambda kv: -kv[1]), ("degradation", "LQs")) + "\n")
    stacked = data.by_group.get(STACKED, 0)
    if stacked:
        out.append(f"{stacked:,} LQs stack two or more types (counted above under each of their types).\n")
    out.append("## Counts\n")
    rows = [("inputs", f"{data.inputs:,}", "100%"), ("accepted pairs", f"{data.accepted:,}",
            f"{data.accepted / data.inputs:.1%}" if data.inputs else "-")]
    rows += [(f"rejected: {t}", f"{n:,}", f"{n / data.inputs:.1%}" if data.inputs else "-")
             for t, n in sorted(data.rejected.items(), key=lambda kv: -kv[1])]
    out.append(_table(rows, ("", "count", "share")) + "\n")
    out.append(_loading(data))
    out.append(_provenance(data, run))
    return "\n".join(out).rstrip() + "\n"


def _loading(data: RunData) -> str:
    members = [m for m in (data.index or {}).get("members") or ["hq.png", "lq.png", "json"] if not m.endswith("(optional)")]
    lq = next((m for m in members if m.startswith("lq")), "lq.png")
    if (data.layout or "webdataset") != "webdataset":
        return ("## Loading\n\nThis run uses the folder layout: `hq/KEY.png`, `lq/KEY.png` (K variants: "
                "`lq_0/KEY.png ..`), `meta/KEY.json`, `prompt/KEY.txt`; pair files by name. The bundled trainer "
                "and `webdataset` need the tar layout (`output.format: webdataset`).\n")
    pattern = _shard_pattern(data)
    return f"""## Loading

Each sample is `KEY.hq.png`, `KEY.{lq}` and `KEY.json` (plus `KEY.txt` with the prompt of a synthesis run);
keys are the 10-digit input index. From this directory (or the hub, once uploaded):

```python
import webdataset as wds
ds = wds.WebDataset("{pattern}").decode("rgb8")
for s in ds:
    hq, lq, meta = s["hq.png"], s["{lq}"], s["json"]
```

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder", split="train")          # reads the configs entry above
# or: load_dataset("webdataset", data_files={{"train": "{SHARD_DIR}/*.tar"}}, split="train")
```

```python
import glob, ray
ds = ray.data.read_webdataset(sorted(glob.glob("path/to/this/folder/{SHARD_DIR}/*.tar")))  # the tars, not the .json records
```

`index.json` lists the shards with their sample counts and sha256; `pairforge verify DIR` checks them.
"""


def _provenance(data: RunData, run: dict) -> str:
    git = run.get("git_revision") or "unknown"
    versions = ", ".join(f"{k} {v}" for k, v in sorted((run.get("versions") or {}).items()))
    config_lines = "\n".join(f"- {k}: `{v}`" for k, v in describe_config(data.config))
    return f"""## Provenance

Every sample's `KEY.json` holds:

- `key`, `index`: the sample's key and input index (seeds derive from the run seed and the index only);
- `source`: where the clean image came from (bundled photo, file path, or synthesis model and prompt), the crop and any conversion;
- `filters`: every filter's measurements and scores for this sample (thresholds included);
- `degradation`: the degradation model with every sampled parameter (a list of K records for K LQ variants), and for real-world types the measured strength;
- `hq_size`, `lq_size` (and `lq_variants`).

The run: `run.json` (resolved config, package versions, git revision, command, resumes),
`shards/shard-NNNNNN.json` (each shard's commit record: accepted keys, rejected keys with stage, rule, reason and value, sha256).
git revision `{git}`; {versions}.

{config_lines}
"""


def write_card(storage: Storage, data: RunData | None = None) -> str:
    """Write ``README.md`` into the run directory; returns its URI."""
    storage.write_bytes(CARD_NAME, render_card(storage, data).encode("utf-8"))
    return storage.uri(CARD_NAME)
