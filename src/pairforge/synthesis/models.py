"""Where model weights come from: local directories or a prepared HF cache, never a silent download.

At run time every model is resolved with ``local_files_only``; a missing one is a
:class:`MissingModelError` that names it and the command that fetches it. ``pairforge models pull CONFIG
--cache DIR`` (:func:`models_pull`) downloads everything a config needs into one directory to copy to an
air-gapped cluster: diffusers pipelines and local LLMs into ``DIR`` (an HF hub cache), pyiqa metric
weights into ``DIR/torch`` (use ``TORCH_HOME=DIR/torch`` at run time).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pairforge.envutil import temporary_env
from pairforge.errors import ModelLoadError

log = logging.getLogger("pairforge.synthesis.models")

PULL_HINT = "pairforge models pull CONFIG --cache DIR"

#: never fetched: other frameworks' formats and pickled checkpoints
_IGNORE = ["*.onnx", "*.onnx_data", "*.msgpack", "*.h5", "*.ckpt", "*openvino*", "*.gguf", "*.pt", "*.bin"]


class MissingModelError(ModelLoadError):
    """A model (or part of it) is not on this machine; the message says how to get it."""


@dataclass
class ModelRequirement:
    """One thing ``models pull`` fetches."""

    what: str  # "diffusers", "transformers", "pyiqa"
    id: str
    revision: str | None = None
    variant: str | None = None
    used_by: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"what": self.what, "id": self.id, "revision": self.revision, "variant": self.variant,
                "used_by": self.used_by, **self.extra}


def is_local(model_id: str) -> bool:
    """A path rather than a hub id (hub ids are exactly ``org/name`` and never start with . / ~)."""
    if Path(model_id).expanduser().exists() or model_id.startswith(("/", ".", "~")):
        return True
    return model_id.count("/") != 1 or "\\" in model_id


def resolve_model_dir(model_id: str, revision: str | None = None, cache_dir: str | None = None) -> tuple[str, str | None]:
    """The local directory of a model and its resolved revision (commit hash for hub snapshots).

    Never downloads: a hub id must already be in the cache (``models pull``)."""
    if is_local(model_id):
        p = Path(model_id).expanduser()
        if not p.is_dir():
            raise MissingModelError(f"model directory {model_id!r} does not exist")
        return str(p.resolve()), None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(model_id, revision=revision, cache_dir=cache_dir, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError) as e:
        where = cache_dir or os.environ.get("HF_HUB_CACHE") or "the default HF cache"
        raise MissingModelError(
            f"model {model_id!r}{f' (revision {revision})' if revision else ''} is not in {where}. Nothing is "
            f"downloaded during a run: fetch it first with `{PULL_HINT}` (then set model.cache_dir to DIR) "
            f"[{type(e).__name__}]"
        ) from None
    return path, Path(path).name


def _pipeline_requirements(cfg: Any, used_by: str) -> list[ModelRequirement]:
    out = []
    model = getattr(cfg, "model", None)
    if model is not None and getattr(cfg, "kind", None) == "synthesis":
        if not is_local(model.id):
            out.append(ModelRequirement("diffusers", model.id, model.revision, model.variant, used_by,
                                        {"family": model.family, "cache_dir": model.cache_dir}))
    return out


def _llm_requirements(llm: Any, used_by: str) -> list[ModelRequirement]:
    if llm is not None and llm.provider == "transformers" and not is_local(llm.model):
        return [ModelRequirement("transformers", llm.model, llm.revision, None, used_by)]
    return []


def required_models(config: Any) -> list[ModelRequirement]:
    """Everything ``config`` (a PipelineConfig) would load at run time that is not a local path."""
    reqs: list[ModelRequirement] = []
    source = getattr(config, "source", None)
    if source is not None and getattr(source, "kind", None) == "synthesis":
        reqs += _pipeline_requirements(source, "source.model")
        prompts = source.prompts
        reqs += _llm_requirements(getattr(prompts, "llm", None), "source.prompts.llm")
        privacy = getattr(prompts, "privacy", None)
        if privacy is not None:
            reqs += _llm_requirements(privacy.llm_check, "source.prompts.privacy.llm_check")
    for i, f in enumerate(getattr(config, "filters", None) or []):
        if getattr(f, "kind", None) == "iqa":
            for m in f.metrics:
                reqs.append(ModelRequirement("pyiqa", m.name, used_by=f"filters[{i}]",
                                             extra={"options": dict(m.options)}))
        # MLLM judges (filters.judge, filters.privacy.judge) with a local transformers model
        for judge, where in ((f, f"filters[{i}].llm"), (getattr(f, "judge", None), f"filters[{i}].judge.llm")):
            reqs += _llm_requirements(getattr(judge, "llm", None), where)
        # any other section may declare hub models it needs
        hub = getattr(f, "hub_models", None)
        if callable(hub):
            for mid, rev in hub():
                if not is_local(mid):
                    reqs.append(ModelRequirement("transformers", mid, rev, used_by=f"filters[{i}]"))
    degrade = getattr(config, "degrade", None)
    hub = getattr(degrade, "hub_models", None)
    if callable(hub):  # e.g. depth / segmentation networks of the real-world degradations
        for mid, rev in hub():
            if not is_local(mid):
                reqs.append(ModelRequirement("transformers", mid, rev, used_by="degrade"))
    return reqs


def _allow_patterns(what: str, variant: str | None) -> tuple[list[str], list[str]]:
    """Which repo files to fetch. Diffusers weights live in component folders: root-level single-file
    checkpoints (e.g. flux1-dev.safetensors, 23 GB) are skipped; transformers weights live at the root."""
    weights = "*/*.safetensors" if what == "diffusers" else "*.safetensors"
    allow = ["model_index.json", "*.json", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
    if variant:
        allow += [weights.replace(".safetensors", f".{variant}.safetensors"),
                  weights.replace(".safetensors", f".{variant}-*.safetensors")]
    else:
        allow.append(weights)
    return allow, list(_IGNORE)


def pull_iqa_metric(name: str, torch_home: str, options: dict | None = None) -> list[str]:
    """Instantiate a pyiqa metric once with ``TORCH_HOME`` pointing into the cache (pyiqa fetches its
    weights, CLIP and timm backbones there on first use) and list the files that appeared."""
    before = set(_files_under(torch_home))
    with temporary_env(TORCH_HOME=torch_home, HF_HUB_CACHE=os.path.join(torch_home, "hf")):
        import pyiqa

        metric = pyiqa.create_metric(name, device="cpu", **(options or {}))
        del metric
    return sorted(set(_files_under(torch_home)) - before)


def _files_under(root: str) -> list[str]:
    out = []
    for d, _, fs in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in fs]
    return out


def models_pull(config: Any, cache_dir: str, dry_run: bool = False) -> list[dict]:
    """Download every model ``config`` needs into ``cache_dir``; returns one record per model.

    ``config`` is a PipelineConfig or a path to a YAML config. Hub models go into ``cache_dir`` as an HF
    hub cache (set ``model.cache_dir: <cache_dir>`` or ``HF_HUB_CACHE``), pyiqa weights into
    ``cache_dir/torch`` (set ``TORCH_HOME``). Already present files are not downloaded again.
    """
    if isinstance(config, (str, os.PathLike)):
        from pairforge.config import load_config

        config = load_config(config)
    cache = Path(cache_dir).expanduser().resolve()
    records = []
    for req in required_models(config):
        rec = req.as_dict()
        rec.pop("cache_dir", None)
        if dry_run:
            rec["status"] = "planned"
            records.append(rec)
            continue
        cache.mkdir(parents=True, exist_ok=True)
        if req.what in ("diffusers", "transformers"):
            from huggingface_hub import snapshot_download

            allow, ignore = _allow_patterns(req.what, req.variant)
            path = snapshot_download(req.id, revision=req.revision, cache_dir=str(cache), allow_patterns=allow,
                                     ignore_patterns=ignore)
            rec.update(status="ok", path=path, resolved_revision=Path(path).name)
        elif req.what == "pyiqa":
            files = pull_iqa_metric(req.id, str(cache / "torch"), req.extra.get("options"))
            rec.update(status="ok", path=str(cache / "torch"), files=files)
        log.info("pulled %s %s", req.what, req.id)
        records.append(rec)
    return records
