"""Text-to-image backends on diffusers: FLUX.1 (dev/schnell) and SDXL.

One :class:`torch.Generator` per sample, seeded from (run seed, index), and one latent draw per generator,
so a sample's image does not depend on which other samples share its batch. Weights are loaded with
``local_files_only``: a missing model is a :class:`~pairforge.synthesis.models.MissingModelError`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pairforge.devices import resolve_device
from pairforge.synthesis.config import GenerationConfig, ModelConfig, diffusion_family
from pairforge.synthesis.models import PULL_HINT, MissingModelError, resolve_model_dir

log = logging.getLogger("pairforge.synthesis")


@dataclass(frozen=True)
class GenRequest:
    """One image to make: final prompt text, negative prompt, seed and size."""

    prompt: str
    negative_prompt: str
    seed: int
    height: int
    width: int


def resolve_dtype(name: str, family: str, device: str):
    import torch

    if name == "auto":
        return diffusion_family(family).auto_dtype(torch, device)
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


class DiffusionBackend:
    """Loads a pipeline once (:meth:`load`) and turns :class:`GenRequest` lists into float images."""

    def __init__(self, model: ModelConfig, generation: GenerationConfig, device: str | None = "auto"):
        self.model = model
        self.gen = generation
        self.device = resolve_device(device)
        self.family = diffusion_family(model.family)
        self.pipe = None
        self.info: dict = {}
        self.tokens: dict[str, str] = {}

    # -- loading -----------------------------------------------------------------------------------
    def load(self) -> None:
        from pairforge.synthesis.embeddings import load_learned_tokens

        path, revision = resolve_model_dir(self.model.id, self.model.revision, self.model.cache_dir)
        dtype = resolve_dtype(self.model.dtype, self.model.family, self.device)
        cls = self.family.pipeline_class()
        try:
            pipe = cls.from_pretrained(path, dtype=dtype, variant=self.model.variant, local_files_only=True)
        except (OSError, ValueError) as e:
            raise MissingModelError(
                f"cannot load the {self.model.family} pipeline {self.model.id!r} from {path}: {e}. If files are "
                f"missing, fetch them with `{PULL_HINT}`"
            ) from None
        pipe.set_progress_bar_config(disable=True)
        learned = {}
        for role, emb in (("positive", self.model.positive_embedding), ("negative", self.model.negative_embedding)):
            if emb is not None:
                learned[role] = load_learned_tokens(pipe, emb, self.model.family)
                self.tokens[role] = emb.token
        if self.model.vae_tiling:
            pipe.vae.enable_tiling()
        if self.model.vae_slicing:
            pipe.vae.enable_slicing()
        if self.model.cpu_offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif self.model.cpu_offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if self.model.compile:
            self._compile(pipe)
        self.pipe = pipe
        self.distilled_guidance = self.family.distilled_guidance(pipe)
        self.vae_multiple = self.family.vae_multiple(pipe)
        for h, w in self.gen.sizes:
            if h % self.vae_multiple or w % self.vae_multiple:
                raise ValueError(f"size [{h}, {w}] is not a multiple of {self.vae_multiple} for this model")
        self.info = {
            "family": self.model.family,
            "model": self.model.id,
            "revision": revision or self.model.revision,
            "variant": self.model.variant,
            "dtype": str(dtype).replace("torch.", ""),
            "scheduler": type(pipe.scheduler).__name__,
            "learned_tokens": learned or None,
        }
        log.info("loaded %s pipeline %s (%s) on %s", self.model.family, self.model.id, self.info["dtype"], self.device)

    def _compile(self, pipe) -> None:
        import torch

        denoiser = self.family.denoiser(pipe)
        if getattr(denoiser, "_repeated_blocks", None):
            denoiser.compile_repeated_blocks(fullgraph=True)
        else:
            denoiser.compile(fullgraph=False)
        log.info("compiled %s (%s)", type(denoiser).__name__, torch.__version__)

    # -- generation --------------------------------------------------------------------------------
    def call_kwargs(self, reqs: list[GenRequest]) -> dict:
        """The pipeline arguments for a group of same-size requests."""
        import torch

        g = self.gen
        gens = [torch.Generator(device="cpu").manual_seed(int(r.seed)) for r in reqs]
        kw = dict(
            prompt=[r.prompt for r in reqs],
            height=reqs[0].height,
            width=reqs[0].width,
            num_inference_steps=g.steps,
            guidance_scale=g.guidance_scale,
            generator=gens,
            output_type="np",
        )
        kw.update(self.family.call_kwargs(g, reqs))
        return kw

    def generate(self, reqs: list[GenRequest]) -> list[np.ndarray]:
        """Float H x W x 3 images in [0, 1] (NaN preserved for the checks), in request order."""
        if self.pipe is None:
            self.load()
        out: list[np.ndarray | None] = [None] * len(reqs)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, r in enumerate(reqs):
            groups.setdefault((r.height, r.width), []).append(i)
        mb = self.gen.micro_batch
        for idx in groups.values():
            for s in range(0, len(idx), mb):
                part = idx[s:s + mb]
                images = self.pipe(**self.call_kwargs([reqs[i] for i in part])).images
                for i, img in zip(part, images):
                    out[i] = np.asarray(img, dtype=np.float32)
        return out  # type: ignore[return-value]

    def sample_info(self, req: GenRequest) -> dict:
        """Per-sample provenance for ``meta["synthesis"]``."""
        g = self.gen
        d = dict(self.info)
        d.update(
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            seed=int(req.seed),
            steps=g.steps,
            size=[req.height, req.width],
            mode=g.mode,
        )
        d.update(self.family.sample_info(g, self.distilled_guidance))
        return d


def compose_prompts(prompt: str, gen: GenerationConfig, tokens: dict[str, str]) -> tuple[str, str]:
    """(positive text, negative text) for a scene prompt, following the mode and templates."""
    pos_tok = tokens.get("positive", "")
    neg_tok = tokens.get("negative", "")
    negative = _tidy(gen.negative_prompt.format(neg=neg_tok))
    if gen.mode == "negatives":
        # SUPIR: generate FROM the negative-quality prompt; the quality wording becomes what to avoid
        text = _tidy(gen.negatives_template.format(prompt=prompt, negative=negative))
        return text, _tidy(gen.quality_suffix)
    text = _tidy(gen.prompt_template.format(prompt=prompt, pos=pos_tok))
    if gen.quality_suffix.strip():
        text = _tidy(f"{text}, {gen.quality_suffix}")
    return text, negative


def _tidy(text: str) -> str:
    t = " ".join(text.split())
    while t.startswith((",", ".")):
        t = t[1:].lstrip()
    while t.endswith(","):
        t = t[:-1].rstrip()
    return t
