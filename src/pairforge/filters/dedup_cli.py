"""The ``pairforge dedup-index`` command (registered in pairforge.cli): the whole-run dedup post-pass."""
from __future__ import annotations

from typing import Annotated

import typer


def dedup_index_command(
    run: Annotated[str, typer.Argument(help="a finished run directory (local path or s3://bucket/prefix)")],
    hash: Annotated[str, typer.Option("--hash", help="phash or dhash (match the dedup filter of the run)")] = "phash",
    max_distance: Annotated[int, typer.Option(min=0, max=32, help="Hamming distance (of 64 bits) that counts as duplicate")] = 6,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="also match mirrored copies")] = True,
) -> None:
    """Find near-duplicates across the whole run (lowest index kept) and write dedup/index.json (what later
    runs reference) and dedup/duplicates.json (duplicates to drop) into the run directory."""
    from rich.console import Console

    from pairforge.filters.dedup import build_run_index

    console = Console()
    if hash not in ("phash", "dhash"):
        console.print(f"[red]error:[/red] --hash must be phash or dhash, got {hash!r}")
        raise typer.Exit(2)
    with console.status("hashing committed samples"):
        try:
            report = build_run_index(run, kind=hash, max_distance=max_distance, flip=flip)
        except (ValueError, FileNotFoundError) as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    console.print(
        f"{report['samples']} samples: {report['kept']} kept, {len(report['duplicates'])} near-duplicate(s) "
        f"across shards; wrote dedup/index.json and dedup/duplicates.json in {run}"
    )
