"""``pairforge prompts CONFIG -n N --out FILE``: write a run's prompt list to a file (to inspect it, edit
it, or feed it back as a ``file`` source). LLM replies are cached beside the output (``FILE.cache/``),
so running the command again never pays twice."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pairforge.prompts.bank import build_bank
from pairforge.prompts.config import EmptyPromptsConfig


def _prompts_and_seed(config: Any) -> tuple[Any, int]:
    if isinstance(config, (str, os.PathLike)):
        from pairforge.config import load_config

        config = load_config(config)
    source = getattr(config, "source", None)
    if source is not None:
        if getattr(source, "kind", None) != "synthesis":
            raise ValueError(f"the config's source is {source.kind!r}; prompts need a synthesis source")
        return source.prompts, config.run.seed
    if getattr(config, "kind", None) == "synthesis":
        return config.prompts, 0
    return config, 0


def prompts_command(config: Any, n: int, out: str | os.PathLike) -> dict:
    """Build ``n`` prompts from the config's prompt source and write them to ``out`` (.txt one per line,
    .jsonl with origins, or .parquet). Returns the bank info (counts, drops, errors)."""
    from pairforge.io.storage import LocalStorage

    prompts_cfg, seed = _prompts_and_seed(config)
    if isinstance(prompts_cfg, EmptyPromptsConfig):
        raise ValueError("the empty prompt source has no prompts to write (every sample uses '')")
    if n < 1:
        raise ValueError("n must be >= 1")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache = LocalStorage(str(out) + ".cache")
    bank, dropped = build_bank(prompts_cfg, n, seed, cache)
    suffix = out.suffix.lower()
    if suffix == ".jsonl":
        text = "".join(json.dumps({"prompt": p, "origin": o}, ensure_ascii=False) + "\n"
                       for p, o in zip(bank.prompts, bank.origins))
        out.write_text(text, encoding="utf-8")
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"prompt": bank.prompts,
                                 "origin": [json.dumps(o, ensure_ascii=False) for o in bank.origins]}), str(out))
    else:
        out.write_text("".join(p.replace("\n", " ") + "\n" for p in bank.prompts), encoding="utf-8")
    info = dict(bank.info)
    info["out"] = str(out)
    info["dropped_examples"] = dropped[:20]
    cache.write_bytes("bank.json", json.dumps(bank.info, indent=2).encode())
    return info
