"""The training configuration: pydantic models of a ``configs/train-*.yaml`` file.

Unknown keys are errors, as in the run config (the shared helpers of :mod:`pairforge.config` format the
messages). Every option the bundled trainer has is declared here, with its default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from pairforge.configbase import StrictModel


# ---------------------------------------------------------------------------------------------- data
class BalanceConfig(StrictModel):
    """Draw degradation types evenly (or by ``weights``) instead of as they occur in the shards."""

    field: str = Field("degradation.type", description="dotted path of the type in KEY.json "
                       "(falls back to degradation.chain, then 'unknown')")
    weights: dict[str, float] | None = Field(None, description="relative weight per type; default: equal "
                                             "weights over the types seen so far")
    buffer_per_type: int = Field(32, ge=1, description="samples held per type while waiting to be drawn")

    @field_validator("weights")
    @classmethod
    def _positive(cls, v):
        if v is not None and (not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0):
            raise ValueError("weights must be non-negative with a positive sum")
        return v


class SplitConfig(StrictModel):
    """Hold out whole sources (photos, input files, synthesis prompts), never tiles of a training photo.

    Applies to every training dataset (held-out samples are skipped) and to ``val`` (only held-out
    samples are used); ``pairforge evaluate --held-out`` reads it from a checkpoint."""

    by: Literal["source"] = Field("source", description="the unit of the split: a sample's source group "
                                  "(bundled photo, input file, synthesis prompt, else seed)")
    held_out: list[str] | None = Field(None, description="the held-out groups by name (a bundled photo name, "
                                       "a file path, or a full group such as prompt:<text>); overrides fraction")
    fraction: float = Field(0.1, gt=0, lt=1, description="without held_out: hold out a group when a hash of "
                            "(seed, group) falls below this (about this share of the sources)")
    seed: int = Field(0, ge=0)

    @field_validator("held_out")
    @classmethod
    def _nonempty(cls, v):
        if v is not None and not v:
            raise ValueError("held_out must name at least one source (or be left out to use fraction)")
        return v


class DatasetSpec(StrictModel):
    """One source of training pairs: a pairforge run directory, an index.json, a brace pattern or a list."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    url: str | list[str] = Field(..., description="run dir or index.json (local or s3://), a brace "
                                 "pattern such as shards/shard-{000000..000009}.tar, or a list of tar urls")
    shards: str | None = Field(None, pattern=r"^-?\d*:-?\d*$",
                               description="python slice of the shard list, e.g. ':-1' (all but the last)")
    weight: float = Field(1.0, ge=0, description="mixing weight when data.stages is not given")
    holdout_every: int | None = Field(None, ge=2, description="skip samples whose index is a multiple of "
                                      "this (by sample, for independent samples only: tiles of one photo "
                                      "leak across such a split; prefer the top-level split)")
    balance: BalanceConfig | None = None


class MixStage(StrictModel):
    """Dataset weights used until ``until_step`` (exclusive); the last stage has no end."""

    until_step: int | None = Field(None, ge=1)
    weights: dict[str, float]

    @field_validator("weights")
    @classmethod
    def _positive(cls, v):
        if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return v


class DataConfig(StrictModel):
    datasets: list[DatasetSpec] = Field(..., min_length=1)
    stages: list[MixStage] = Field(default_factory=list, description="staged mixing schedule "
                                   "(e.g. synthetic only, then synthetic:real 8:2); default: dataset weights")
    patch_size: int = Field(128, ge=8, description="HQ crop size; the LQ crop is patch_size / scale")
    batch_size: int = Field(16, ge=1, description="per process (per GPU)")
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes per training process")
    shuffle_buffer: int = Field(256, ge=1, description="samples in each stream's shuffle buffer")
    shuffle_initial: int = Field(64, ge=1, description="samples buffered before the first is drawn")
    hflip: bool = True
    rotate: bool = Field(True, description="vertical flips and 90-degree rotations (transposes)")
    lq_variant: Literal["random", "first"] = Field("random", description="which of KEY.lq_0..lq_{K-1} to use")
    lq_upsample: bool = Field(False, description="bicubic-upsample a smaller LQ to HQ size (for scale-1 "
                              "restorers such as NAFNet trained on SR shards)")
    resume: Literal["exact", "reseed"] = Field("exact", description="exact: replay the sample streams to the "
                                               "saved position (reads the skipped bytes, no decoding); "
                                               "reseed: fresh streams seeded from the step")
    exact_resume_max_samples: int = Field(500_000, ge=0, description="above this many samples to skip per "
                                          "stream, resume reseeds instead (with a warning)")
    max_bad_fraction: float = Field(0.2, ge=0, le=1, description="fail when more than this fraction of the "
                                    "samples of a stream cannot be used (after 50 attempts)")
    prefetch_factor: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check(self):
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")
        for i, st in enumerate(self.stages):
            unknown = set(st.weights) - set(names)
            if unknown:
                raise ValueError(f"stages[{i}].weights names unknown dataset(s) {sorted(unknown)} "
                                 f"(allowed: {names})")
            last = i == len(self.stages) - 1
            if not last and st.until_step is None:
                raise ValueError(f"stages[{i}] needs until_step (only the last stage is open-ended)")
            if i > 0 and st.until_step is not None and st.until_step <= (self.stages[i - 1].until_step or 0):
                raise ValueError(f"stages[{i}].until_step must increase")
        if not self.stages and sum(d.weight for d in self.datasets) <= 0:
            raise ValueError("at least one dataset needs a positive weight")
        return self


class ValConfig(StrictModel):
    url: str | list[str] = Field(..., description="held-out shards (same forms as a dataset url)")
    shards: str | None = Field(None, pattern=r"^-?\d*:-?\d*$")
    holdout_every: int | None = Field(None, ge=2, description="use only samples whose index is a multiple "
                                      "of this (the ones the training datasets hold out)")
    every: int = Field(1000, ge=1, description="validate every N steps (and at the end)")
    max_samples: int = Field(16, ge=1)
    crop: int | None = Field(256, ge=8, description="centre-crop HQ to at most this size (LQ accordingly)")
    grid_samples: int = Field(4, ge=0, description="rows in the image grid PNG (LQ | output | HQ)")
    use_ema: bool = True
    lpips: Literal["auto", "off", "on"] = Field("auto", description="auto: only when weights are local")


# --------------------------------------------------------------------------------------------- model
class NAFNetConfig(StrictModel):
    """NAFNet (Chen et al. 2022): same-size restoration. Defaults are the paper's SIDD width-32 model."""

    kind: Literal["nafnet"] = "nafnet"
    width: int = Field(32, ge=1)
    enc_blocks: list[int] = Field(default_factory=lambda: [2, 2, 4, 8])
    middle_blocks: int = Field(12, ge=0)
    dec_blocks: list[int] = Field(default_factory=lambda: [2, 2, 2, 2])
    dw_expand: int = Field(2, ge=1)
    ffn_expand: int = Field(2, ge=1)
    drop_rate: float = Field(0.0, ge=0, lt=1)

    @property
    def scale(self) -> int:
        return 1

    @model_validator(mode="after")
    def _levels(self):
        if len(self.enc_blocks) != len(self.dec_blocks):
            raise ValueError("enc_blocks and dec_blocks need the same number of levels")
        return self


class RRDBNetConfig(StrictModel):
    """RRDBNet (ESRGAN; the Real-ESRGAN generator). Defaults are Real-ESRGAN x4plus."""

    kind: Literal["rrdbnet"] = "rrdbnet"
    scale: Literal[1, 2, 4] = 4
    num_feat: int = Field(64, ge=1)
    num_block: int = Field(23, ge=1)
    num_grow_ch: int = Field(32, ge=1)
    residual: Literal["none", "bicubic"] = Field("none", description="bicubic: learn a residual over the "
                                                 "bicubic upsampled input (not in the paper; converges faster)")
    detail_sigma: float | None = Field(None, gt=0, description="with residual: bicubic, subtract a Gaussian "
                                       "low-pass (this sigma, output pixels) of the learned correction: the "
                                       "model can add and remove detail but cannot shift tone or colour")

    @model_validator(mode="after")
    def _detail_needs_residual(self):
        if self.detail_sigma is not None and self.residual != "bicubic":
            raise ValueError("detail_sigma filters the correction over bicubic; it needs residual: bicubic")
        return self


ModelConfig = Annotated[NAFNetConfig | RRDBNetConfig, Field(discriminator="kind")]


# -------------------------------------------------------------------------------------------- losses
class PixelLossConfig(StrictModel):
    kind: Literal["l1", "charbonnier"] = "l1"
    weight: float = Field(1.0, ge=0)
    eps: float = Field(1e-3, gt=0, description="Charbonnier epsilon")


class PerceptualLossConfig(StrictModel):
    kind: Literal["vgg", "lpips"] = "vgg"
    weight: float = Field(1.0, ge=0)
    layers: dict[str, float] = Field(
        default_factory=lambda: {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
        description="VGG19 layer -> weight (Real-ESRGAN's choice by default)")
    weights_path: str | None = Field(None, description="local VGG19 state dict; default: torchvision's "
                                     "cache file (never downloaded)")
    lpips_net: Literal["alex", "vgg"] = "alex"


class GANConfig(StrictModel):
    """A U-Net discriminator with spectral norm (Real-ESRGAN) and the vanilla (BCE) GAN loss."""

    weight: float = Field(0.1, ge=0)
    num_feat: int = Field(64, ge=1)
    lr: float | None = Field(None, gt=0, description="default: optim.lr")
    start_step: int = Field(0, ge=0, description="pixel/perceptual losses only before this step")


class LossConfig(StrictModel):
    pixel: PixelLossConfig = PixelLossConfig()
    perceptual: PerceptualLossConfig | None = None
    gan: GANConfig | None = None


# ------------------------------------------------------------------------------------ optimisation
class OptimConfig(StrictModel):
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.01, ge=0, le=1, description="cosine floor as a fraction of lr")
    grad_clip: float | None = Field(1.0, gt=0, description="max global gradient norm (None: off)")


class EMAConfig(StrictModel):
    enabled: bool = True
    decay: float = Field(0.999, ge=0, lt=1)
    start_step: int = Field(0, ge=0, description="copy the weights until this step, average after")


class TrainSection(StrictModel):
    seed: int = Field(0, ge=0)
    max_steps: int = Field(100_000, ge=1, description="length of the schedule")
    log_every: int = Field(50, ge=1)
    ckpt_every: int = Field(2000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA")
    compile: bool = Field(False, description="torch.compile the generator")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | Literal["auto"] = Field("auto", description="torch CPU threads per training process; "
                                           "auto: the usable CPUs (affinity, cgroup quota) divided by the "
                                           "processes on this host, less one per data worker (which use "
                                           "one each); set it lower on a machine shared with other jobs")
    ema: EMAConfig = EMAConfig()

    @field_validator("threads")
    @classmethod
    def _threads(cls, v):
        if v != "auto" and v < 1:
            raise ValueError("threads must be 'auto' or >= 1")
        return v


class OutputConfig(StrictModel):
    dir: str = Field(..., description="local directory for checkpoints, metrics.csv, validation grids")
    tensorboard: Literal["auto", "on", "off"] = "auto"


class RayTrainConfig(StrictModel):
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    address: str | None = None
    max_failures: int = Field(0, ge=0, description="Ray restarts the workers this many times; the loop "
                              "resumes from the latest checkpoint")


class TrainConfig(StrictModel):
    name: str = Field("restorer", pattern=r"^[A-Za-z0-9_-]+$")
    model: ModelConfig
    data: DataConfig
    split: SplitConfig | None = Field(None, description="held-out sources: skipped by training, the only "
                                      "samples validation uses")
    val: ValConfig | None = None
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainSection = TrainSection()
    output: OutputConfig
    ray: RayTrainConfig = RayTrainConfig()

    @model_validator(mode="after")
    def _patch_fits_scale(self):
        s = 1 if self.data.lq_upsample else self.model.scale
        if self.data.patch_size % s:
            raise ValueError(f"data.patch_size {self.data.patch_size} must be a multiple of the scale {s}")
        if self.data.lq_upsample and self.model.scale != 1:
            raise ValueError("data.lq_upsample makes LQ HQ-sized; it needs a scale-1 model")
        return self

    @property
    def data_scale(self) -> int:
        """HQ/LQ size ratio the data loader must deliver (1 when LQ is upsampled first)."""
        return 1 if self.data.lq_upsample else self.model.scale


def parse_train_config(data: Any, origin: str = "train config") -> TrainConfig:
    from pairforge.config import validate_model

    return validate_model(TrainConfig, data, origin)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML training config (a path or a name under configs/); ``overrides`` are ``dotted.key=yaml_value``."""
    from pairforge.config import read_yaml_config

    data, origin = read_yaml_config(path, overrides, what="train config")
    return parse_train_config(data, origin=origin)
