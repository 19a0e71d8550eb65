"""The ``pairforge train-classifier`` command (registered in pairforge.cli)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_classifier_command(
    positives: Annotated[list[str], typer.Option("--pos", metavar="PATH", help="high-quality images: folder, image, shard tar or run dir (repeatable)")],
    negatives: Annotated[list[str], typer.Option("--neg", metavar="PATH", help="low-quality images: folder, image, shard tar or run dir (repeatable)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the classifier JSON")],
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="fraction of each class held out")] = 0.2,
    l2: Annotated[float, typer.Option(min=0.0, help="L2 regularisation strength")] = 1e-2,
    seed: Annotated[int, typer.Option(help="seed of the validation split")] = 0,
    max_images: Annotated[int | None, typer.Option(min=1, help="cap per class")] = None,
) -> None:
    """Train the binary quality classifier used by filters of kind `classifier` (GenIR-style)."""
    from rich.console import Console
    from rich.table import Table

    from pairforge.filters.classifier import train_classifier

    console = Console()
    with console.status("computing features and fitting"):
        try:
            report = train_classifier(positives, negatives, out, val_fraction=val_fraction, l2=l2, seed=seed, max_images=max_images)
        except (ValueError, FileNotFoundError) as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    table = Table(title="quality classifier")
    table.add_column("what")
    table.add_column("value", justify="right")
    for k in ("positives", "negatives", "train_samples", "val_samples", "train_accuracy", "val_accuracy", "val_auc", "out"):
        if k in report and report[k] is not None:
            v = report[k]
            table.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    console.print(table)
