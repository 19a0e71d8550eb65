"""Named configs: the YAML files that ship inside the package (``pairforge/configs/``).

Why: ``pairforge run quickstart`` must work from an installed wheel or the Docker image, not only from a
source checkout. A name is a path under that folder without ``.yaml`` (``quickstart``,
``degradations/realesrgan``); a checkout's top-level ``configs/`` is a link to the same folder, so the
paths in the README stay true. Each file's first comment line is its description (``pairforge configs``).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


def configs_root() -> Path:
    """The folder of the named configs inside the installed package."""
    return Path(str(resources.files("pairforge") / "configs"))


def named_config_path(name: str) -> Path | None:
    """The file a config name stands for (``quickstart`` -> ``.../configs/quickstart.yaml``), or None."""
    if not name or name.startswith(("/", ".")) or ".." in Path(name).parts:
        return None
    root = configs_root()
    for candidate in (root / name, root / f"{name}.yaml"):
        if candidate.is_file() and candidate.suffix in (".yaml", ".yml"):
            return candidate
    return None


@dataclass(frozen=True)
class NamedConfig:
    name: str
    kind: str  # run, train, degrade (a degrade: section), filters (a filters: list), other
    description: str
    path: Path


def _kind(data: object) -> str:
    if isinstance(data, list) and data and all(isinstance(x, dict) and "kind" in x for x in data):
        return "filters"  # a snippet to paste under filters:
    if not isinstance(data, dict):
        return "other"
    if {"model", "data"} <= set(data) or "train" in data:
        return "train"
    if "source" in data or "run" in data or "degrade" in data and "kind" not in data:
        return "run"
    if "kind" in data:
        return "degrade"
    if "filters" in data:
        return "filters"
    return "other"


def _first_sentence(text: str, width: int = 72) -> str:
    text = " ".join(text.split())
    if ". " in text:
        text = text.split(". ", 1)[0] + "."
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _description(text: str, data: object) -> str:
    """A preset's ``notes``, else the file's first comment paragraph, cut to its first sentence."""
    if isinstance(data, dict) and isinstance(data.get("notes"), str) and data["notes"].strip():
        return _first_sentence(data["notes"])
    lines: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("#"):
            if lines or s:
                break
            continue
        s = s.lstrip("#").strip()
        if not s:
            if lines:
                break
            continue
        lines.append(s)
    return _first_sentence(" ".join(lines)) if lines else "(no description)"


def list_named_configs() -> list[NamedConfig]:
    """Every shipped config, top-level ones first, with its kind and one-line description."""
    import yaml

    root = configs_root()
    out = []
    for p in sorted(root.rglob("*.yaml"), key=lambda p: (len(p.relative_to(root).parts), str(p))):
        text = p.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        name = p.relative_to(root).with_suffix("").as_posix()
        out.append(NamedConfig(name, _kind(data), _description(text, data), p))
    return out
