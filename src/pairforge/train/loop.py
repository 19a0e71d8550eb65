"""The training loop: one function that torchrun processes, Ray Train workers and plain Python all run.

``run_training(config)`` reads the process layout from the environment (RANK/WORLD_SIZE/LOCAL_RANK,
set by torchrun and by Ray Train), resumes from the newest checkpoint in the output directory, trains
to ``train.max_steps`` (or ``stop_at``) and returns a summary. Rank 0 writes metrics.csv, val.csv,
validation grids and checkpoints.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from pairforge.train.checkpoint import (
    clean_temporaries,
    find_latest,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pairforge.train.config import TrainConfig
from pairforge.train.data import (
    PairStream,
    StreamPositions,
    load_val_pairs,
    make_train_loader,
)
from pairforge.train.distributed import (
    DistContext,
    barrier,
    gather_objects,
    mean_across,
    setup_distributed,
    teardown,
)
from pairforge.train.ema import EMA
from pairforge.train.losses import (
    PerceptualLoss,
    PixelLoss,
    build_lpips,
    gan_loss,
    lpips_missing,
)
from pairforge.train.metrics import CSVLog, tensorboard_writer
from pairforge.train.nets import UNetDiscriminatorSN, build_generator
from pairforge.train.optim import build_optimizer, build_scheduler, clip_gradients
from pairforge.train.threads import apply_threads
from pairforge.train.validate import validate

log = logging.getLogger("pairforge.train")

Reporter = Callable[[dict], None]


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    checkpoint: Path | None
    last_log: dict = field(default_factory=dict)
    last_val: dict | None = None
    resumed_from: int | None = None


class Trainer:
    def __init__(self, config: TrainConfig, ctx: DistContext, reporter: Reporter | None = None):
        self.cfg = config
        self.ctx = ctx
        self.reporter = reporter
        self.device = ctx.device
        self.out = Path(config.output.dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.val_groups: list[str] = []
        t = config.train
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        bf16 = t.precision == "bf16" or (t.precision == "auto" and self.device.type == "cuda"
                                         and torch.cuda.is_bf16_supported())
        self.amp_dtype = torch.bfloat16 if bf16 else None

        torch.manual_seed(t.seed)  # identical initial weights on every rank (DDP also broadcasts them)
        self.net = build_generator(config.model).to(self.device)
        self.ema = EMA(self.net, t.ema.decay, t.ema.start_step) if t.ema.enabled else None
        self.opt = build_optimizer(self.net.parameters(), config.optim)
        self.sched = build_scheduler(self.opt, config.optim, t.max_steps)
        self.pixel = PixelLoss(config.loss.pixel)
        self.percep = PerceptualLoss(config.loss.perceptual).to(self.device) if config.loss.perceptual else None
        gan = config.loss.gan
        self.disc = self.opt_d = self.sched_d = None
        if gan is not None:
            self.disc = UNetDiscriminatorSN(3, gan.num_feat).to(self.device)
            self.opt_d = build_optimizer(self.disc.parameters(), config.optim, lr=gan.lr or config.optim.lr)
            self.sched_d = build_scheduler(self.opt_d, config.optim, t.max_steps)
        dev_ids = [self.device.index] if self.device.type == "cuda" else None
        self.net_train: nn.Module = DDP(self.net, device_ids=dev_ids) if ctx.distributed else self.net
        self.disc_train = (DDP(self.disc, device_ids=dev_ids) if ctx.distributed and self.disc is not None
                           else self.disc)
        if t.compile:
            self.net_train = torch.compile(self.net_train)

    # -- state --------------------------------------------------------------------------------------
    def state(self, positions: StreamPositions | None) -> dict:
        return {
            "config": self.cfg.model_dump(mode="json"),
            "model": self.net.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "disc": self.disc.state_dict() if self.disc is not None else None,
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "sched_d": self.sched_d.state_dict() if self.sched_d is not None else None,
            "rng": rng_state(),
            "data": positions.to_dict() if positions is not None else None,
            # what the held-out metrics were measured on (the split rule itself is in config["split"])
            "heldout": {"split": self.cfg.split.model_dump(mode="json") if self.cfg.split else None,
                        "val_groups": list(self.val_groups)},
        }

    def load_state(self, ck: dict) -> None:
        self.net.load_state_dict(ck["model"])
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"] if ck.get("ema") is not None else ck["model"])
        self.opt.load_state_dict(ck["opt"])
        self.sched.load_state_dict(ck["sched"])
        if self.disc is not None and ck.get("disc") is not None:
            self.disc.load_state_dict(ck["disc"])
            self.opt_d.load_state_dict(ck["opt_d"])
            self.sched_d.load_state_dict(ck["sched_d"])
        set_rng_state(ck["rng"])

    # -- one step -----------------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        nb = self.device.type == "cuda"
        lq = batch["lq"].to(self.device, non_blocking=nb)
        hq = batch["hq"].to(self.device, non_blocking=nb)
        use_gan = self.disc is not None and step >= cfg.loss.gan.start_step
        logs: dict[str, torch.Tensor] = {}
        with self._autocast():
            out = self.net_train(lq)
        out32 = out.float()
        loss = self.pixel(out32, hq) * cfg.loss.pixel.weight
        logs["l_pix"] = loss.detach()
        if self.percep is not None:
            with self._autocast():
                lp = self.percep(out32, hq).float() * cfg.loss.perceptual.weight
            logs["l_percep"] = lp.detach()
            loss = loss + lp
        if use_gan:
            self.disc.requires_grad_(False)
            with self._autocast():  # the bare module: no DDP hooks, D's weights get no gradient here
                lg = gan_loss(self.disc(out).float(), True) * cfg.loss.gan.weight
            logs["l_gan"] = lg.detach()
            loss = loss + lg
        logs["loss"] = loss.detach()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        logs["grad_norm"] = clip_gradients(self.net, cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.net, step)
        if use_gan:
            self.disc.requires_grad_(True)
            with self._autocast():
                logits = self.disc_train(torch.cat([hq, out.detach().to(hq.dtype)])).float()
            real, fake = logits.chunk(2)
            ld = gan_loss(real, True) + gan_loss(fake, False)
            self.opt_d.zero_grad(set_to_none=True)
            ld.backward()
            clip_gradients(self.disc, cfg.optim.grad_clip)
            self.opt_d.step()
            self.sched_d.step()
            logs["l_d"] = ld.detach()
        return logs

    # -- the run ------------------------------------------------------------------------------------
    def run(self, stop_at: int | None = None, resume: bool = True) -> TrainResult:
        cfg, ctx = self.cfg, self.ctx
        step, positions, resumed_from = 0, None, None
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            clean_temporaries(self.ckpt_dir)
            (self.out / "train-config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        barrier(ctx)
        if resume:
            path = find_latest(self.ckpt_dir)
            if path is not None:
                ck = load_checkpoint(path)  # on CPU: RNG states must stay CPU tensors; load_state_dict moves the rest
                self.load_state(ck)
                step = resumed_from = int(ck["step"])
                positions = StreamPositions.from_dict(ck.get("data"))
                if ctx.is_main:
                    log.info("resumed from %s (step %d)", path, step)
        metrics = CSVLog(self.out / "metrics.csv")
        val_log = CSVLog(self.out / "val.csv")
        tb = None
        if ctx.is_main:
            metrics.truncate_after(step)
            val_log.truncate_after(step)
            tb = tensorboard_writer(self.out / "tb", cfg.output.tensorboard)
        val_pairs = lpips_model = None
        if cfg.val is not None and ctx.is_main:
            val_pairs = load_val_pairs(cfg.val, cfg.data_scale, cfg.data.lq_upsample, cfg.split)
            self.val_groups = sorted({p.group for p in val_pairs})
            if cfg.split is not None:
                log.info("validation on %d pairs of %d held-out source(s): %s", len(val_pairs),
                         len(self.val_groups), ", ".join(self.val_groups[:8]))
            if cfg.val.lpips == "on" or (cfg.val.lpips == "auto" and not lpips_missing()):
                lpips_model = build_lpips(used_by="val.lpips").to(self.device)

        loader = make_train_loader(cfg, ctx.rank, ctx.world_size, start_step=step, positions=positions,
                                   pin_memory=self.device.type == "cuda")
        stream: PairStream = loader.dataset
        end = cfg.train.max_steps if stop_at is None else min(stop_at, cfg.train.max_steps)
        consumed: dict[int, list[int]] = {}
        bad: dict[int, dict] = {}
        last_log: dict = {}
        last_val: dict | None = None
        last_ckpt: Path | None = None
        acc: dict[str, torch.Tensor] = {}
        n_acc = 0
        t_last, samples = time.perf_counter(), 0
        self.net_train.train()
        it = iter(loader)
        try:
            while step < end:
                batch = next(it)
                if batch["_step"] != step:
                    raise RuntimeError(f"data loader delivered the batch for step {batch['_step']} at step {step}")
                consumed[batch["_stream"]] = batch["_taken"]
                bad[batch["_stream"]] = batch["_errors"]
                logs = self.train_step(batch, step)
                step += 1
                samples += batch["hq"].shape[0]
                for k, v in logs.items():  # tensors: no device sync until the log step
                    acc[k] = acc[k] + v if k in acc else v
                n_acc += 1
                if step % cfg.train.log_every == 0 or step == end:
                    now = time.perf_counter()
                    row = {k: float(v) / n_acc for k, v in acc.items()}
                    row["samples_per_s"] = samples / max(now - t_last, 1e-9)
                    row["bad_samples"] = float(sum(sum(d.values()) for d in bad.values()))
                    row = mean_across(ctx, row)
                    row["samples_per_s"] *= ctx.world_size
                    row["bad_samples"] *= ctx.world_size
                    row = {"step": step, "lr": self.sched.get_last_lr()[0], **row}
                    last_log = row
                    acc, n_acc, t_last, samples = {}, 0, now, 0
                    if ctx.is_main:
                        metrics.write(row)
                        if tb is not None:
                            for k, v in row.items():
                                if k != "step":
                                    tb.add_scalar(f"train/{k}", v, step)
                        log.info("step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"))
                    if self.reporter is not None:
                        self.reporter(dict(row))
                if val_pairs is not None and (step % cfg.val.every == 0 or step == end):
                    last_val = self._validate(step, val_pairs, lpips_model, val_log, tb)
                if cfg.val is not None and (step % cfg.val.every == 0 or step == end):
                    barrier(ctx)
                if step % cfg.train.ckpt_every == 0 or step == end:
                    last_ckpt = self._checkpoint(step, stream, consumed)
        finally:
            del it
            if tb is not None:
                tb.close()
        return TrainResult(step, self.out, last_ckpt or find_latest(self.ckpt_dir), last_log, last_val, resumed_from)

    def _validate(self, step: int, pairs, lpips_model, val_log: CSVLog, tb) -> dict:
        v = self.cfg.val
        model = self.ema.module if (v.use_ema and self.ema is not None) else self.net
        res = validate(model, pairs, self.device, amp_dtype=self.amp_dtype, lpips_model=lpips_model,
                       grid_path=self.out / "val" / f"step-{step:08d}.png", grid_rows=v.grid_samples)
        row = {"step": step, **res}
        val_log.write(row)
        if tb is not None:
            for k, val in res.items():
                tb.add_scalar(f"val/{k}", val, step)
        log.info("validation at step %d: %s", step, ", ".join(f"{k}={x:.4g}" for k, x in res.items()))
        return row

    def _checkpoint(self, step: int, stream: PairStream, consumed: dict) -> Path | None:
        merged: dict[int, list[int]] = {}
        for part in gather_objects(self.ctx, consumed):
            merged.update(part)
        path = None
        if self.ctx.is_main:
            path = save_checkpoint(self.ckpt_dir, step, self.state(stream.positions(merged)),
                                   keep=self.cfg.train.keep_checkpoints)
        barrier(self.ctx)
        return path


def run_training(config: TrainConfig, *, stop_at: int | None = None, resume: bool = True,
                 reporter: Reporter | None = None) -> TrainResult:
    """Train (or continue training) the restorer described by ``config`` in this process."""
    ctx = setup_distributed(config.train.device)
    apply_threads(config.train.threads, ctx.device, int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
                  config.data.num_workers)
    try:
        return Trainer(config, ctx, reporter).run(stop_at=stop_at, resume=resume)
    finally:
        teardown(ctx)
