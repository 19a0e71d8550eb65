"""Learn GenIR's quality tokens for SDXL by textual inversion.

GenIR steers generation with M learned positive and N learned negative prompt tokens: the positive
ones are learned on high-quality images, the negative ones on low-quality images (pairforge's own LQs
are a ready source), both through the ordinary denoising loss of the frozen diffusion model. Only the
new rows of the two text encoders' input embeddings change. The result is one ``.safetensors`` file per
role with a ``clip_l`` (n, 768) and a ``clip_g`` (n, 1280) tensor: exactly what
``synthesis.model.positive_embedding`` / ``negative_embedding`` load.

Resumable: the state (new embedding rows, optimiser, step) is saved atomically every ``save_every``
steps, and every step's image choice, noise and timestep derive from ``(seed, step)``, so a resumed run
follows the trajectory of an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from pairforge.errors import UserError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
STATE_FILE = "state.pt"
RESULT_FILE = "tokens.json"


class LearnTokensError(UserError):
    """A learn-tokens input or option the user fixes (no images, a changed option on resume)."""


@dataclass
class LearnTokensOptions:
    """What to learn, from what, for how long. Fields in ``RESUME_KEYS`` must match on resume."""

    model: str
    positive: list[str]
    negative: list[str]
    out: str
    positive_token: str = "<pos>"
    negative_token: str = "<neg>"
    vectors: int = 4
    steps: int = 1000
    lr: float = 5e-3
    batch_size: int = 1
    resolution: int = 1024
    seed: int = 0
    save_every: int = 100
    init_positive: str = "high quality"
    init_negative: str = "low quality"
    template: str = "a photo, {tokens}"
    revision: str | None = None
    cache_dir: str | None = None
    device: str = "auto"
    extra: dict = field(default_factory=dict)


RESUME_KEYS = ("model", "positive", "negative", "positive_token", "negative_token", "vectors", "lr",
               "batch_size", "resolution", "seed", "init_positive", "init_negative", "template", "revision")


# ----------------------------------------------------------------------------------------------- images
ImageLoader = Callable[[], Image.Image]


def _folder_images(folder: Path) -> list[tuple[str, ImageLoader]]:
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return [(str(p), (lambda p=p: Image.open(p))) for p in paths]


def _dataset_images(directory: str, role: str) -> list[tuple[str, ImageLoader]]:
    """A pairforge dataset's HQ images (positive role) or LQ images (negative role), by key."""
    import io

    from pairforge.io.dataset import HQ, LQ, DatasetReader
    from pairforge.io.storage import open_storage

    reader = DatasetReader(open_storage(directory))
    member = HQ if role == "positive" else LQ
    out = []
    for rec in reader.records():
        for key in rec.get("accepted", []):
            def load(rec=rec, key=key):
                for s in reader.iter_shard(rec, members={member}, keys={key}):
                    return Image.open(io.BytesIO(s[member]))
                raise LearnTokensError(f"{directory}: sample {key} has no {member}")
            out.append((f"{directory}#{key}", load))
    return out


def collect_images(sources: list[str], role: str) -> list[tuple[str, ImageLoader]]:
    """Every image of ``sources`` (folders of images, single image files, or pairforge datasets)."""
    from pairforge.io.dataset import is_dataset
    from pairforge.io.storage import open_storage

    items: list[tuple[str, ImageLoader]] = []
    for src in sources:
        p = Path(src).expanduser()
        if src.startswith("s3://") or (p.is_dir() and is_dataset(open_storage(str(p)))):
            items += _dataset_images(src, role)
        elif p.is_dir():
            items += _folder_images(p)
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            items.append((str(p), (lambda p=p: Image.open(p))))
        else:
            raise LearnTokensError(f"--{role} {src!r} is not an image, a folder of images or a pairforge dataset")
    if not items:
        raise LearnTokensError(f"--{role} {sources} holds no images")
    return items


def to_training_tensor(img: Image.Image, resolution: int, rng: np.random.Generator):
    """RGB, shorter side scaled to ``resolution``, a random square crop, in [-1, 1], CHW float32.

    Returns the tensor and SDXL's size conditioning (original size, crop top-left)."""
    import torch

    img = img.convert("RGB")
    w, h = img.size
    s = resolution / min(w, h)
    nw, nh = max(resolution, round(w * s)), max(resolution, round(h * s))
    img = img.resize((nw, nh), Image.BICUBIC)
    top = int(rng.integers(0, nh - resolution + 1))
    left = int(rng.integers(0, nw - resolution + 1))
    img = img.crop((left, top, left + resolution, top + resolution))
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), (h, w, top, left)


# ------------------------------------------------------------------------------------------------ model
def token_names(token: str, n: int) -> list[str]:
    """The placeholder words of an n-vector token, named as diffusers' ``load_textual_inversion`` names
    them (``<pos>``, ``<pos>_1``, ...), so a prompt holding ``<pos>`` expands to all of them."""
    return [token] + [f"{token}_{i}" for i in range(1, n)]


def _init_ids(tokenizer, words: str, n: int) -> list[int]:
    ids = tokenizer(words, add_special_tokens=False).input_ids or [tokenizer.eos_token_id]
    return [ids[i % len(ids)] for i in range(n)]


class _Encoder:
    """One text encoder with the new words: their vectors are a small parameter spliced into the
    embedding layer's output by a forward hook, so only they learn and the optimiser state stays tiny."""

    def __init__(self, name: str, model, tokenizer, roles: list[tuple[str, str, str]], vectors: int):
        import torch

        self.name, self.model, self.tokenizer = name, model, tokenizer
        self.rows: dict[str, slice] = {}
        new_ids, init_ids = [], []
        for k, (role, token, init) in enumerate(roles):
            words = token_names(token, vectors)
            if any(w in tokenizer.get_vocab() for w in words):
                raise LearnTokensError(f"token {token!r} already exists in the {name} tokenizer; pick another")
            init_ids += _init_ids(tokenizer, init, vectors)
            tokenizer.add_tokens(words)
            new_ids += tokenizer.convert_tokens_to_ids(words)
            self.rows[role] = slice(k * vectors, (k + 1) * vectors)
        model.resize_token_embeddings(len(tokenizer))
        model.requires_grad_(False)
        emb = model.get_input_embeddings()
        self.param = torch.nn.Parameter(emb.weight[init_ids].detach().clone().float())
        lookup = torch.full((len(tokenizer),), -1, dtype=torch.long)
        lookup[new_ids] = torch.arange(len(new_ids))
        self.lookup = lookup
        emb.register_forward_hook(self._splice)

    def _splice(self, _module, inputs, output):
        import torch

        slot = self.lookup.to(inputs[0].device)[inputs[0]]
        new = self.param.to(output.dtype)[slot.clamp(min=0)]
        return torch.where((slot >= 0)[..., None], new, output)

    def to(self, device) -> None:
        self.model.to(device)
        self.param.data = self.param.data.to(device)


def add_tokens(pipe, opts: LearnTokensOptions) -> list[_Encoder]:
    """Add both roles' placeholder words to both text encoders, initialised from the init words."""
    roles = [("positive", opts.positive_token, opts.init_positive),
             ("negative", opts.negative_token, opts.init_negative)]
    return [_Encoder("clip_l", pipe.text_encoder, pipe.tokenizer, roles, opts.vectors),
            _Encoder("clip_g", pipe.text_encoder_2, pipe.tokenizer_2, roles, opts.vectors)]


def encode_prompts(encs: list[_Encoder], prompts: list[str], device):
    """SDXL's conditioning: the penultimate hidden states of both encoders side by side, and the pooled
    projection of the second."""
    import torch

    hidden, pooled = [], None
    for e in encs:
        ids = e.tokenizer(prompts, padding="max_length", max_length=e.tokenizer.model_max_length,
                          truncation=True, return_tensors="pt").input_ids.to(device)
        out = e.model(ids, output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        if e.name == "clip_g":
            pooled = out[0]
    return torch.cat(hidden, dim=-1), pooled


def _fingerprint(opts: LearnTokensOptions) -> dict:
    return {k: getattr(opts, k) for k in RESUME_KEYS}


def _save_atomic(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_results(encs: list[_Encoder], opts: LearnTokensOptions, step: int, losses: list[float]) -> dict:
    from safetensors.torch import save_file

    out = Path(opts.out)
    files = {}
    for role, token in (("positive", opts.positive_token), ("negative", opts.negative_token)):
        tensors = {e.name: e.param[e.rows[role]].detach().float().cpu().contiguous() for e in encs}
        path = out / f"{role}.safetensors"
        save_file(tensors, str(path), metadata={"token": token, "role": role, "steps": str(step)})
        files[role] = {"path": str(path), "token": token,
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                       "shapes": {k: list(v.shape) for k, v in tensors.items()}}
    result = {"steps": step, "options": {k: v for k, v in asdict(opts).items() if k != "extra"},
              "files": files, "final_loss": float(np.mean(losses[-20:])) if losses else None}
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2))
    return result


def learn_tokens(opts: LearnTokensOptions, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) textual inversion; returns what ``tokens.json`` records."""
    import torch
    from diffusers import DDPMScheduler, StableDiffusionXLPipeline

    from pairforge.devices import resolve_device
    from pairforge.synthesis.models import MissingModelError, resolve_model_dir

    if opts.vectors < 1 or opts.steps < 1 or opts.batch_size < 1 or opts.resolution < 8:
        raise LearnTokensError("--vectors, --steps, --batch-size must be >= 1 and --resolution >= 8")
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = torch.load(state_path, map_location="cpu", weights_only=False) if state_path.exists() else None
    if state is not None:
        was = state["options"]
        changed = [k for k, v in _fingerprint(opts).items() if was.get(k) != v]
        if changed:
            before = ", ".join(f"{k}={was.get(k)!r}" for k in changed)
            raise LearnTokensError(f"{out} holds a run with different {', '.join(changed)} (was: {before}); "
                                   "use another --out or the same options")

    pos_images = collect_images(opts.positive, "positive")
    neg_images = collect_images(opts.negative, "negative")
    device = torch.device(resolve_device(opts.device))
    path, _rev = resolve_model_dir(opts.model, opts.revision, opts.cache_dir)
    try:
        pipe = StableDiffusionXLPipeline.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    except (OSError, ValueError) as e:
        raise MissingModelError(f"cannot load the SDXL pipeline {opts.model!r} from {path}: {e}") from None
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    unet = pipe.unet.to(device, dtype).requires_grad_(False)
    vae = pipe.vae.to(device, torch.float32).requires_grad_(False)
    encs = add_tokens(pipe, opts)
    for e in encs:
        e.to(device)
    optim = torch.optim.AdamW([e.param for e in encs], lr=opts.lr, weight_decay=0.0)
    step, losses = 0, []
    if state is not None:
        with torch.no_grad():
            for e in encs:
                e.param.copy_(state["params"][e.name].to(device))
        optim.load_state_dict(state["optimizer"])
        step, losses = state["step"], state["losses"]
        log(f"resuming at step {step} of {opts.steps}")
    prompts = {role: opts.template.format(tokens=" ".join(token_names(tok, opts.vectors)))
               for role, tok in (("positive", opts.positive_token), ("negative", opts.negative_token))}
    scale = float(getattr(vae.config, "scaling_factor", 1.0))
    prediction = noise_sched.config.get("prediction_type", "epsilon")

    def batch_for(role: str, images: list, rng: np.random.Generator):
        picks = rng.integers(0, len(images), size=opts.batch_size)
        xs, conds = [], []
        for i in picks:
            name, load = images[int(i)]
            try:
                x, (h, w, top, left) = to_training_tensor(load(), opts.resolution, rng)
            except OSError as err:
                raise LearnTokensError(f"cannot read image {name}: {err}") from None
            xs.append(x)
            conds.append([h, w, top, left, opts.resolution, opts.resolution])
        return torch.stack(xs).to(device), torch.tensor(conds, dtype=torch.float32, device=device)

    while step < opts.steps:
        rng = np.random.default_rng([opts.seed, step])
        gen = torch.Generator(device="cpu").manual_seed(int(rng.integers(2**62)))
        optim.zero_grad(set_to_none=True)
        total = 0.0
        for role, images in (("positive", pos_images), ("negative", neg_images)):
            pixels, time_ids = batch_for(role, images, rng)
            with torch.no_grad():
                latents = vae.encode(pixels).latent_dist.sample(generator=gen) * scale
            noise = torch.randn(latents.shape, generator=gen).to(device)
            t = torch.randint(0, noise_sched.config.num_train_timesteps, (latents.shape[0],), generator=gen).to(device)
            noisy = noise_sched.add_noise(latents, noise, t)
            embeds, pooled = encode_prompts(encs, [prompts[role]] * latents.shape[0], device)
            pred = unet(noisy.to(dtype), t, encoder_hidden_states=embeds.to(dtype),
                        added_cond_kwargs={"text_embeds": pooled.to(dtype), "time_ids": time_ids.to(dtype)}).sample
            target = noise if prediction == "epsilon" else noise_sched.get_velocity(latents, noise, t)
            loss = torch.nn.functional.mse_loss(pred.float(), target.float())
            loss.backward()
            total += float(loss.detach())
        optim.step()
        step += 1
        losses.append(total)
        if step % opts.save_every == 0 or step == opts.steps:
            params = {e.name: e.param.detach().cpu().clone() for e in encs}
            _save_atomic({"options": _fingerprint(opts), "step": step, "params": params,
                          "optimizer": optim.state_dict(), "losses": losses}, state_path)
            log(f"step {step}/{opts.steps}  loss {np.mean(losses[-opts.save_every:]):.4f}")
    return _write_results(encs, opts, step, losses)
