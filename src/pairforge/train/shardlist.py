"""Turn a dataset location into the list of shard urls the loader streams from.

Accepted forms: a pairforge run directory (local or ``s3://``) whose ``index.json`` lists the committed
shards (without an index, the committed shards: a valid commit record and a tar of the recorded size), an ``index.json`` itself, a brace
pattern (``dir/shard-{000000..000009}.tar``) or an explicit list of tar urls.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import braceexpand

from pairforge.io.dataset import DatasetReader
from pairforge.io.storage import open_storage


def _split_dir(url: str) -> tuple[str, str]:
    """(directory, file name) of a local path or s3 url."""
    url = url.rstrip("/")
    head, _, tail = url.rpartition("/")
    return (head or "."), tail


def _join(base: str, name: str) -> str:
    if base.startswith("s3://"):
        return base.rstrip("/") + "/" + name
    return str(Path(base) / name)


def _folder_error(origin: str) -> ValueError:
    return ValueError(f"{origin} is a folder-layout dataset (hq/ lq/ meta/ files); the trainer streams WebDataset "
                      "shards: write the pairs with output.format: webdataset")


def _from_index(base: str, index: dict, origin: str) -> list[str]:
    if "shards" not in index:
        raise ValueError(f"{origin}: not a pairforge index (no 'shards' list)")
    if index.get("quality") == "negative":
        raise ValueError(f"{origin}: holds SUPIR-style negative-quality images (neg.png), not (HQ, LQ) pairs; "
                         "train a quality classifier on them (pairforge train-classifier --neg DIR) or use them "
                         "as negative-prompt targets, never as restoration targets")
    if str(index.get("format", "")).startswith("pairforge-") and "folder" in index["format"]:
        raise _folder_error(origin)
    out = []
    for entry in index["shards"]:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not name or (isinstance(entry, dict) and entry.get("samples", 1) == 0):
            continue
        out.append(name if "://" in name or os.path.isabs(name) else _join(base, name))
    return out


def _from_directory(url: str) -> list[str]:
    storage = open_storage(url)
    if storage.exists("index.json"):
        return _from_index(storage.url if url.startswith("s3://") else str(Path(url).resolve()),
                           json.loads(storage.read_bytes("index.json")), _join(url, "index.json"))
    reader = DatasetReader(storage)  # without an index: the shards committed so far (record + intact tar)
    if "folder" in reader.layouts():
        raise _folder_error(url)
    base = storage.url if url.startswith("s3://") else str(Path(url).resolve())
    return [_join(base, r["tar"]) for r in reader.records() if r.get("tar")]


def _apply_slice(urls: list[str], select: str | None) -> list[str]:
    if not select:
        return urls
    lo, _, hi = select.partition(":")
    return urls[slice(int(lo) if lo else None, int(hi) if hi else None)]


def resolve_shards(url: str | list[str], select: str | None = None) -> list[str]:
    """The shard urls of a dataset location, in order, optionally sliced (``select`` like ``":-1"``)."""
    if isinstance(url, (list, tuple)):
        urls = [u for item in url for u in braceexpand.braceexpand(str(item))]
    else:
        url = str(url)
        url = url.removeprefix("file://")
        if url.endswith(".json"):
            base, name = _split_dir(url)
            storage = open_storage(base)
            if not storage.exists(name):
                raise FileNotFoundError(f"index not found: {url}")
            urls = _from_index(storage.url if base.startswith("s3://") else str(Path(base).resolve()),
                               json.loads(storage.read_bytes(name)), url)
        elif "{" in url or url.endswith(".tar"):
            urls = list(braceexpand.braceexpand(url))
        else:
            if not url.startswith("s3://") and not Path(url).is_dir():
                raise FileNotFoundError(f"dataset location not found: {url} (expected a run directory, "
                                        "an index.json, a brace pattern or .tar urls)")
            urls = _from_directory(url)
    out = _apply_slice(urls, select)
    if not out:
        raise ValueError(f"no shards found at {url!r}" + (f" with shards={select!r}" if select else ""))
    return out
