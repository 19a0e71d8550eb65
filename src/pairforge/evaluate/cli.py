"""``pairforge evaluate`` (registered in :mod:`pairforge.cli`)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer


def evaluate_command(
    data: Annotated[list[str], typer.Argument(help="pairforge datasets (run dirs, local or s3://), folders with "
                                              "hq/ and lq/, or LQ-only images / folders")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="a trainer checkpoint or output dir, "
                                             "or an RRDBNet/NAFNet state dict (Real-ESRGAN / BasicSR layouts)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write every number (overall, breakdowns, "
                                                  "per sample) to this file")] = None,
    by: Annotated[str, typer.Option("--by", help="table rows: type, severity or source")] = "type",
    tile: Annotated[int, typer.Option(help="tile size in input pixels (0: whole image)")] = 512,
    tile_pad: Annotated[int, typer.Option(help="context pixels around each tile")] = 32,
    grid: Annotated[Path | None, typer.Option("--grid", help="PNG of the worst / median / best item of each "
                                              "group: LQ | baseline | model | HQ")] = None,
    lpips: Annotated[str, typer.Option(help="auto (when its weights are on disk), on or off")] = "auto",
    nr: Annotated[str | None, typer.Option("--nr", help="no-reference pyiqa metrics for LQ-only inputs, comma "
                                           "separated (default: piqe, niqe, brisque, those available offline)")] = None,
    lq_only: Annotated[bool, typer.Option("--lq-only", help="ignore HQs: score LQ and output without reference")] = False,
    held_out: Annotated[bool, typer.Option("--held-out", help="only samples of the sources the checkpoint's "
                                           "split held out from training")] = False,
    limit: Annotated[int | None, typer.Option(help="stop after this many items")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="a trainer checkpoint's EMA weights")] = True,
    residual: Annotated[str, typer.Option(help="foreign RRDBNet weights: none (public checkpoints) or bicubic")] = "none",
) -> None:
    """Measure a restorer: PSNR/SSIM (RGB and Y, SR border crop), LPIPS when available, next to the
    identity/bicubic baseline, by degradation type/severity/source; no-reference scores for LQ-only inputs."""
    from rich.console import Console

    from pairforge.evaluate.models import load_model
    from pairforge.evaluate.report import BY, pick_grid, render_grid, table, write_json
    from pairforge.evaluate.run import evaluate, restore_items
    from pairforge.train.statedicts import StateDictError

    err = Console(stderr=True)

    def fail(msg: str, code: int = 2):
        err.print(f"[bold red]error:[/] {msg}", highlight=False)
        raise typer.Exit(code)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if by not in BY:
        fail(f"--by {by!r}: use one of {', '.join(BY)}")
    if lpips not in ("auto", "on", "off"):
        fail(f"--lpips {lpips!r}: use auto, on or off")
    nr_names = [n.strip() for n in nr.split(",") if n.strip()] if nr else None
    try:
        r, info = load_model(checkpoint, use_ema=ema, device=device, residual=residual)
        select = None
        if held_out:
            from pairforge.evaluate.heldout import held_out_selector

            select = held_out_selector(info, str(checkpoint))
        res = evaluate(r, info, data, tile=tile or None, tile_pad=tile_pad, lpips=lpips, nr=nr_names,
                       lq_only=lq_only, limit=limit, select=select)
    except (FileNotFoundError, ValueError, StateDictError, RuntimeError) as e:
        fail(str(e))
    if not res.rows:
        fail(f"nothing to evaluate in {', '.join(data)} (skipped: {dict(res.skipped) or 'none'})")
    console = Console()
    console.print(table(res, by))
    if res.skipped:
        console.print(f"skipped: {dict(res.skipped)}")
    if res.nr_skipped:
        for name, why in res.nr_skipped.items():
            console.print(f"no-reference {name} not used: {why}", highlight=False)
    if json_out is not None:
        write_json(res, json_out)
        console.print(f"JSON: {json_out}")
    if grid is not None:
        picks = pick_grid(res, by)
        wanted = {(row["dataset"], row["key"]) for chosen in picks.values() for _n, row in chosen}
        images = restore_items(r, data, wanted, tile=tile or None, tile_pad=tile_pad, lq_only=lq_only)
        grid.parent.mkdir(parents=True, exist_ok=True)
        render_grid(picks, images, res.nr_lower_better).save(grid)
        console.print(f"grid: {grid}")
