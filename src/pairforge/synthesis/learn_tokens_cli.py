"""`pairforge learn-tokens`: GenIR's positive/negative quality tokens for SDXL, by textual inversion."""
from __future__ import annotations

from typing import List, Optional

import typer


def learn_tokens_command(
    model: str = typer.Option(..., "--model", help="SDXL pipeline: a diffusers directory or a hub id in the cache"),
    positive: List[str] = typer.Option(..., "--positive", help="high-quality images: folder, file or pairforge "
                                       "dataset (its HQs); repeatable"),
    negative: List[str] = typer.Option(..., "--negative", help="low-quality images: folder, file or pairforge "
                                       "dataset (its LQs); repeatable"),
    out: str = typer.Option(..., "--out", help="folder for positive/negative.safetensors, tokens.json, state.pt"),
    steps: int = typer.Option(1000, help="optimisation steps (each sees one positive and one negative batch)"),
    vectors: int = typer.Option(4, help="vectors per token (GenIR's M = N)"),
    positive_token: str = typer.Option("<pos>", help="placeholder word of the positive token"),
    negative_token: str = typer.Option("<neg>", help="placeholder word of the negative token"),
    lr: float = typer.Option(5e-3, help="AdamW learning rate of the token vectors"),
    batch_size: int = typer.Option(1, help="images per role per step"),
    resolution: int = typer.Option(1024, help="square training crop (SDXL: 1024)"),
    seed: int = typer.Option(0),
    save_every: int = typer.Option(100, help="checkpoint every N steps (a rerun resumes from it)"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1"),
    revision: Optional[str] = typer.Option(None, help="hub revision of --model"),
    cache_dir: Optional[str] = typer.Option(None, help="HF cache filled by `pairforge models pull`"),
) -> None:
    """Learn a positive and a negative quality token for SDXL (GenIR's dual-prompt recipe).

    The files it writes are what `synthesis.model.positive_embedding` / `negative_embedding` read."""
    from rich.console import Console

    from pairforge.errors import UserError
    from pairforge.synthesis.learn_tokens import LearnTokensOptions, learn_tokens
    from pairforge.synthesis.models import MissingModelError

    console = Console()
    opts = LearnTokensOptions(model=model, positive=list(positive), negative=list(negative), out=out, steps=steps,
                              vectors=vectors, positive_token=positive_token, negative_token=negative_token,
                              lr=lr, batch_size=batch_size, resolution=resolution, seed=seed,
                              save_every=save_every, device=device, revision=revision, cache_dir=cache_dir)
    try:
        result = learn_tokens(opts, log=console.print)
    except (UserError, MissingModelError) as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    pos, neg = result["files"]["positive"], result["files"]["negative"]
    console.print(f"learned {positive_token} and {negative_token} in {result['steps']} steps; use them with:\n"
                  f"  synthesis:\n    model:\n      positive_embedding: {{path: {pos['path']}, token: \"{positive_token}\"}}\n"
                  f"      negative_embedding: {{path: {neg['path']}, token: \"{negative_token}\"}}", highlight=False)
