"""CLI commands of the synthesis side: ``pairforge models pull`` and ``pairforge prompts``
(registered in :mod:`pairforge.cli`)."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)

models_app = typer.Typer(no_args_is_help=True, help="Fetch the models a config needs, for offline clusters.")


def _load(config: str, overrides: list[str]):
    from pairforge.config import ConfigError, load_config

    try:
        return load_config(config, overrides)
    except ConfigError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2)


def _load_train_if_train_config(config: str, overrides: list[str]):
    """The TrainConfig when CONFIG is a training config (model + data + output), else None."""
    from pairforge.config import ConfigError, read_yaml_config
    from pairforge.train.config import parse_train_config
    from pairforge.train.weights import is_train_config

    try:
        data, origin = read_yaml_config(config, overrides)
        if not is_train_config(data):
            return None
        return parse_train_config(data, origin)
    except ConfigError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2)


@models_app.command("pull")
def models_pull_cli(
    config: str = typer.Argument(..., help="YAML run or training config (or a name under configs/)"),
    cache: Path = typer.Option(..., "--cache", help="directory to fill (an HF hub cache; pyiqa weights in DIR/torch)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be fetched"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: dotted.key=value (repeatable)"),
):
    """Download every model CONFIG needs (diffusers pipeline, local LLMs/MLLMs, pyiqa metric weights; for a
    training config the VGG19 / LPIPS files of its losses and validation) into CACHE. Copy CACHE to the
    cluster, set model.cache_dir (or HF_HUB_CACHE) to it and TORCH_HOME to CACHE/torch. Gated models (FLUX.1-dev) need HF_TOKEN here, never at run time."""
    from pairforge.synthesis.models import models_pull
    from pairforge.train.weights import pull_train_weights

    train_cfg = _load_train_if_train_config(config, set_)
    cfg = train_cfg if train_cfg is not None else _load(config, set_)
    try:
        if train_cfg is not None:  # VGG19 / LPIPS files, where the trainer reads them with TORCH_HOME=CACHE/torch
            records = pull_train_weights(train_cfg, str(cache), dry_run=dry_run)
        else:
            records = models_pull(cfg, str(cache), dry_run=dry_run)
    except Exception as e:  # noqa: BLE001 - network/auth problems are reported, not traced
        err.print(f"[bold red]error:[/] pulling failed: {type(e).__name__}: {e}", highlight=False)
        raise typer.Exit(1)
    t = Table(title=f"models for {config}" + (" (dry run)" if dry_run else ""))
    for col in ("what", "id", "revision", "used by", "status"):
        t.add_column(col)
    for r in records:
        t.add_row(r["what"], r["id"], str(r.get("resolved_revision") or r.get("revision") or ""), r["used_by"],
                  r["status"])
    if not records:
        console.print("nothing to fetch: every model in this config is a local path (or needs no weights)")
    else:
        console.print(t)


def prompts_cli(
    config: str = typer.Argument(..., help="YAML run config with a synthesis source"),
    n: int = typer.Option(..., "-n", "--num", min=1, help="how many prompts"),
    out: Path = typer.Option(Path("prompts.txt"), "--out", "-o", help=".txt (one per line), .jsonl or .parquet"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: dotted.key=value (repeatable)"),
):
    """Write N prompts from the config's prompt source (screened and de-duplicated) to a file. LLM replies
    are cached in OUT.cache/, so running it again costs nothing."""
    from pairforge.prompts.command import prompts_command

    cfg = _load(config, set_)
    try:
        info = prompts_command(cfg, n, out)
    except (ValueError, RuntimeError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2)
    console.print(f"wrote {info['size']} prompts to {out}")
    summary = {"dropped": info["dropped"], "llm_errors": len(info.get("llm_errors", []))}
    for k in ("llm_usage", "privacy_llm_usage"):  # requests (retries included), tokens, cost of this call
        if k in info:
            summary[k] = info[k]
    console.print(json.dumps(summary))
