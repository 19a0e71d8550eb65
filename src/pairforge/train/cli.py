"""Command-line entry points of the trainer (registered in pairforge.cli as ``train`` and ``restore``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pairforge.train").setLevel(logging.INFO)


def train_command(
    config: Annotated[Path, typer.Argument(help="training config YAML, e.g. configs/train-quickstart.yaml")],
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="override: dotted.key=value (repeatable)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="output directory (overrides output.dir)")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="continue from the newest checkpoint in the output directory")] = True,
    stop_at: Annotated[int | None, typer.Option("--stop-at", help="stop (with a checkpoint) after this step; rerun to continue")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="launch on Ray Train with the config's ray section")] = False,
) -> None:
    """Train a restorer (NAFNet / RRDBNet) on pairforge shards. Run under torchrun for multi-GPU DDP."""
    from rich.console import Console
    from rich.table import Table

    from pairforge.config import ConfigError
    from pairforge.train.config import load_train_config

    _logging()
    overrides = list(set_ or [])
    if out is not None:
        overrides.append(f"output.dir={out}")
    try:
        cfg = load_train_config(config, overrides)
    except ConfigError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)
    console = Console()
    from pairforge.errors import UserError

    if ray:
        from pairforge.train.launch_ray import train_with_ray

        try:
            metrics = train_with_ray(cfg, stop_at=stop_at, resume=resume)
        except UserError as e:  # a Ray address that cannot be joined, ...: one line
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        console.print(f"Ray Train finished: {metrics}")
        return
    from pairforge.train.loop import run_training

    try:
        result = run_training(cfg, stop_at=stop_at, resume=resume)
    except UserError as e:  # a missing weight file, ...: one line, no traceback
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    table = Table(title=f"training {cfg.name}")
    table.add_column("what")
    table.add_column("value")
    table.add_row("steps", f"{result.step} / {cfg.train.max_steps}")
    if result.resumed_from is not None:
        table.add_row("resumed from step", str(result.resumed_from))
    for k in ("loss", "l_pix", "l_percep", "l_gan", "l_d"):
        if k in result.last_log:
            table.add_row(k, f"{result.last_log[k]:.5f}")
    if result.last_val:
        v = result.last_val
        table.add_row("val PSNR (baseline)", f"{v['psnr']:.2f} dB ({v['psnr_baseline']:.2f} dB)")
        table.add_row("val SSIM (baseline)", f"{v['ssim']:.4f} ({v['ssim_baseline']:.4f})")
        if "lpips" in v:
            table.add_row("val LPIPS (baseline)", f"{v['lpips']:.4f} ({v['lpips_baseline']:.4f})")
    table.add_row("checkpoint", str(result.checkpoint))
    table.add_row("metrics", str(result.output_dir / "metrics.csv"))
    console.print(table)


def restore_command(
    input: Annotated[Path, typer.Argument(help="an image or a folder of images")],
    output: Annotated[Path, typer.Argument(help="output image (for a single input) or folder")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="checkpoint file, or a training output dir (newest checkpoint)")],
    tile: Annotated[int, typer.Option(help="tile size in input pixels (0: whole image)")] = 512,
    tile_pad: Annotated[int, typer.Option(help="context pixels around each tile")] = 32,
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="use the EMA weights when the checkpoint has them")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    pre_upscale: Annotated[int | None, typer.Option(help="bicubic-upscale inputs first (scale-1 models trained with data.lq_upsample)")] = None,
) -> None:
    """Restore images with a trained checkpoint (PNG outputs; large images are tiled)."""
    from pairforge.train.restore import restore_paths

    _logging()
    written = restore_paths(checkpoint, input, output, tile=tile or None, tile_pad=tile_pad, use_ema=ema,
                            device=device, pre_upscale=pre_upscale)
    typer.echo(f"restored {len(written)} image(s) -> {output}")
