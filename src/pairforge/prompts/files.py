"""Prompts from a file: .txt (one prompt per line), .jsonl (objects with a prompt field) or .parquet."""
from __future__ import annotations

import io
import json
import posixpath
from typing import Iterator

from pairforge.prompts.config import FilePromptsConfig


def read_bytes(path: str) -> bytes:
    """Read a local path or an s3:// url."""
    if path.startswith("s3://"):
        from pairforge.io.storage import open_storage

        parent, name = posixpath.split(path)
        return open_storage(parent).read_bytes(name)
    with open(path, "rb") as f:
        return f.read()


def read_prompt_file(path: str, field: str = "prompt") -> list[str]:
    """Every prompt in the file, in file order (blank lines and comment lines starting with # skipped)."""
    data = read_bytes(path)
    low = path.lower()
    if low.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data), columns=[field])
        return [str(x) for x in table.column(field).to_pylist() if x is not None and str(x).strip()]
    text = data.decode("utf-8-sig")
    if low.endswith(".jsonl") or low.endswith(".ndjson"):
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e})") from None
            if isinstance(obj, str):
                out.append(obj)
            elif isinstance(obj, dict) and field in obj:
                out.append(str(obj[field]))
            else:
                raise ValueError(f"{path}:{n}: no {field!r} field")
        return [p for p in out if p.strip()]
    if low.endswith(".txt") or "." not in posixpath.basename(low):
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    raise ValueError(f"{path}: unsupported prompt file type; use .txt, .jsonl or .parquet")


class FileReader:
    def __init__(self, config: FilePromptsConfig):
        self.config = config

    def candidates(self, need: int) -> Iterator[tuple[str, dict]]:
        for i, p in enumerate(read_prompt_file(self.config.path, self.config.field)):
            yield " ".join(p.split()), {"line": i}
