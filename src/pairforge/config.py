"""The run configuration: pydantic models of the YAML, the one place that knows every option.

Each library package owns the models of its own section (sources, filters, degradations, synthesis)
and registers them in :mod:`pairforge.registry`; this module composes the registered ones. Unknown keys, wrong types and impossible values are errors that name the
field (see :func:`load_config`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from pairforge.configbase import Resources, StrictModel
from pairforge.degradations.simple import SimpleDegradeConfig
from pairforge.registry import DEGRADERS, FILTERS, SOURCES
from pairforge.sources.config import BundledSourceConfig


class RunSection(StrictModel):
    name: str = Field("pairforge", pattern=r"^[A-Za-z0-9_-]+$")
    seed: int = Field(0, ge=0, description="the run seed; every sample's randomness derives from it")
    num_samples: int | None = Field(None, ge=1, description="cap on samples (default: all the source has)")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class OutputSection(StrictModel):
    samples_per_shard: int = Field(64, ge=1, le=1_000_000)
    format: Literal["webdataset", "folder"] = Field("webdataset", description="tar shards, or plain hq/ lq/ meta/ folders")
    image_format: Literal["png"] = "png"
    png_compression: int = Field(1, ge=0, le=9, description="zlib level: lossless at any level, 1 is fastest")
    write_prompt: bool = Field(True, description="write KEY.txt with the prompt when the sample has one")
    report: bool = Field(True, description="write report.html (run report) and README.md (dataset card) at the end of a complete run")
    license: str = Field("other", min_length=1, description="the dataset's license for the dataset card (an SPDX-style id "
                         "such as cc-by-4.0, or 'other'); it is yours to set: the images' own licenses decide")
    rejected_thumbnails: int = Field(2, ge=0, le=64, description="tiny JPEGs of rejected inputs kept per rejection reason "
                                     "per shard in the commit record, for the report's rejected gallery (0: none)")


class RaySection(StrictModel):
    address: str | None = Field(None, description="Ray cluster address; None starts local Ray")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for local Ray (default: all)")
    object_store_memory: int | None = Field(None, ge=78_643_200)


#: the discriminated unions of every registered kind (see :mod:`pairforge.registry`)
SourceConfig = SOURCES.union()
FilterConfig = FILTERS.union()
DegradeConfig = DEGRADERS.union()


class WriterConfig(StrictModel):
    resources: Resources = Resources(batch_size=64)


class PipelineConfig(StrictModel):
    run: RunSection = RunSection()
    source: SourceConfig = BundledSourceConfig()
    filters: list[FilterConfig] = Field(default_factory=list)
    degrade: DegradeConfig = SimpleDegradeConfig()
    output: OutputSection = OutputSection()
    writer: WriterConfig = WriterConfig()
    ray: RaySection = RaySection()

    @model_validator(mode="after")
    def _negatives_are_not_degraded(self):
        gen = getattr(self.source, "generation", None)
        if getattr(gen, "mode", None) == "negatives" and "degrade" in self.model_fields_set:
            raise ValueError("source.generation.mode: negatives writes negative-quality images on their own "
                             "(neg.png) and never degrades them; remove the degrade section")
        return self


class ConfigError(ValueError):
    """A config problem, with every offending field named."""


def format_validation_error(err: ValidationError, origin: str = "config") -> str:
    lines = [f"{origin}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not an option here)"
        ctx = e.get("ctx") or {}
        if "expected" in ctx and str(ctx["expected"]) not in msg:
            msg += f" (allowed: {ctx['expected']})"
        lines.append(f"  - {loc}: {msg}; got {e.get('input')!r}"[:500])
    return "\n".join(lines)


def validate_model(model: type[BaseModel], data: Any, origin: str):
    """Validate ``data`` against a config model, turning pydantic's errors into one ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, origin)) from None


def read_yaml_config(path: str | Path, overrides: list[str] | None = None, what: str = "config") -> tuple[dict, str]:
    """Read a YAML config (a path, or the name of a config shipped in the package, e.g. ``quickstart``:
    see :mod:`pairforge.named_configs`) and apply overrides."""
    p = Path(path)
    if not p.exists():
        from pairforge.named_configs import named_config_path

        builtin = named_config_path(str(path))
        if builtin is None:
            raise ConfigError(f"{what} file not found: {path} (and no shipped config of that name: `pairforge configs` lists them)")
        p = builtin
    if p.is_dir():
        raise ConfigError(f"{what} {p} is a folder, not a YAML file")
    try:
        text = p.read_bytes().decode("utf-8")
        data = yaml.safe_load(text) or {}
    except OSError as e:
        raise ConfigError(f"{what} {p}: cannot read it ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {p}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                          "save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {' '.join(str(e).split())}") from None
    for ov in overrides or []:
        apply_override(data, ov)
    return data, str(p)


def parse_config(data: dict[str, Any], origin: str = "config") -> PipelineConfig:
    return validate_model(PipelineConfig, data, origin)


def load_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Load a YAML run config; ``overrides`` are ``dotted.key=yaml_value`` strings applied on top."""
    data, origin = read_yaml_config(path, overrides)
    return parse_config(data, origin=origin)


def apply_override(data: dict, override: str) -> None:
    """Set one ``dotted.key=yaml_value`` (list entries by index: ``filters.0.kind=iqa``); a path that
    does not fit the config's shape is a :class:`ConfigError` naming the part that does not."""
    if "=" not in override:
        raise ConfigError(f"--set {override!r} must look like dotted.key=value")
    key, _, raw = override.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {override!r}: {key!r} is not a dotted key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {override!r}: the value is not valid YAML ({' '.join(str(e).split())})") from None
    node: Any = data
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the config"
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.lstrip("-").isdigit():
                raise ConfigError(f"--set {override!r}: {where} is a list, so {part!r} must be an index (0-{len(node) - 1})")
            i = int(part)
            if not -len(node) <= i < len(node):
                span = f"0-{len(node) - 1}" if node else "none: it is empty"
                raise ConfigError(f"--set {override!r}: {where} has {len(node)} entries (index {span}), not {i}")
            if last:
                node[i] = value
            else:
                node = node[i]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:  # a missing or null section starts empty
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(
                f"--set {override!r}: {where} is a single value ({type(node).__name__} {node!r}), not a section, "
                f"so it has no {part!r}"
            )


def config_to_dict(config: PipelineConfig) -> dict:
    return config.model_dump(mode="json")


def degrade_section_for_preset(name: str) -> dict:
    """The ``degrade:`` section a preset name stands for (used by ``pairforge degrade --preset``):
    ``simple``, ``realworld`` (the nine types, equal weights) or any chain preset."""
    from pairforge.degradations.chain.presets import preset_names

    if name == "simple":
        return {"kind": "simple"}
    if name == "realworld":
        return {"kind": "realworld"}
    if name in preset_names():
        return {"kind": "chain", "preset": name}
    raise KeyError(f"unknown degradation preset {name!r}; allowed: simple, realworld, {', '.join(preset_names())}")
