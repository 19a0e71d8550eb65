"""The pairforge command line (typer). Every command has --help."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="pairforge: manufacture (clean, degraded) image pairs for restoration training.",
)
console = Console(stderr=False)
err = Console(stderr=True)


def _fail(msg: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)  # one line, whatever the width
    raise typer.Exit(code)


def _load(config: str, overrides: list[str] | None):
    from pairforge.config import ConfigError, load_config

    try:
        return load_config(config, overrides)
    except ConfigError as e:
        _fail(str(e))


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors a user fixes (a missing model, a worker that could not start): printed, no traceback.
    Missing weights and models are :class:`~pairforge.errors.ModelLoadError`, a UserError."""
    from pairforge.errors import UserError

    return (UserError,)


def _local_executor(workers: Optional[int]):
    """The local executor with ``--workers`` threads (default: every CPU this process may use)."""
    from pairforge.pipeline.executors import LocalExecutor

    return LocalExecutor(workers=workers)


def _summary_table(s) -> Table:
    t = Table(title="pairforge run summary")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("output", s.out)
    t.add_row("inputs planned", str(s.num_samples))
    t.add_row("shards", f"{s.shards_total} ({s.shards_skipped} already committed, {s.shards_written} written now)")
    t.add_row("accepted pairs (dataset)", str(s.accepted))
    t.add_row("rejected (dataset)", str(sum(s.rejected.values())))
    t.add_row("this run", f"{s.accepted_this_run} pairs from {s.inputs_this_run} inputs in {s.seconds:.1f} s")
    t.add_row("pairs/s (this run, wall clock)", f"{s.pairs_per_second:.2f}")
    return t


#: Ray loggers whose WARNING lines only announce a default (token authentication switched on for a
#: local cluster); `-q` asks for no chatter, and Ray's real warnings and errors still print
_RAY_ANNOUNCERS = ("ray._private.authentication.authentication_token_setup",)


def _quiet_ray_announcements() -> None:
    import logging

    for name in _RAY_ANNOUNCERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def execute_run(cfg, out: str, limit: Optional[int], executor: str, ray_address: Optional[str], quiet: bool = False,
                verify: bool = False, allow_shrink: bool = False):
    from pairforge.pipeline.runner import run_pipeline
    from pairforge.report import rejection_table

    if quiet:
        _quiet_ray_announcements()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accepted {task.fields[accepted]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )
    state: dict = {"written": 0, "accepted": 0}

    def on_start(plan, n_shards, pending):
        state.update(total=n_shards, skipped=n_shards - len(pending))
        if len(pending) < n_shards:
            done = "; nothing left to write" if not pending else ""
            err.print(f"resuming: {n_shards - len(pending)} of {n_shards} shards already committed{done}")
        # the pending shards need not be the last ones (a shard redone in the middle): count their own inputs
        state["task"] = progress.add_task("samples", total=sum(s.size for s in pending), accepted=0)
        progress.start()

    def on_record(rec):
        state["accepted"] += rec["samples"]
        state["written"] += 1
        progress.update(state["task"], advance=rec["end"] - rec["start"], accepted=state["accepted"])

    try:
        summary = run_pipeline(cfg, out, limit=limit, executor=executor, ray_address=ray_address, on_start=on_start,
                               on_record=on_record, verify=verify, allow_shrink=allow_shrink)
    except KeyboardInterrupt:
        progress.stop()
        if "total" in state:
            committed = state["skipped"] + state["written"]
            err.print(f"interrupted: {committed} of {state['total']} shards are committed in {out} ({state['written']} "
                      f"written by this run, {state['accepted']} pairs); rerun the same command to resume from there",
                      highlight=False, soft_wrap=True)
        else:
            err.print(f"interrupted before any shard was written to {out}; rerun the same command to start",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        progress.stop()
    if not quiet:
        console.print(_summary_table(summary))
        console.print(rejection_table(summary.rejected, summary.num_samples, title="Rejections by stage/rule"))
        for name, rep in summary.reports.items():
            console.print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in rep.items() if not isinstance(v, (dict, list))), highlight=False)
        if summary.report:
            console.print(f"run report: {summary.report} (open it in a browser); dataset card: {summary.card}", highlight=False)
    return summary


@app.command()
def run(
    config: str = typer.Argument(..., help="YAML run config, or the name of a shipped config (e.g. quickstart; `pairforge configs` lists them)"),
    out: str = typer.Option(..., "--out", "-o", help="output directory: a local path or s3://bucket/prefix; an existing one is resumed"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="make at most this many samples (inputs)"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (default: config ray.address, else local Ray)"),
    executor: str = typer.Option("ray", "--executor", help="ray (distributed, default) or local (one process, no Ray)"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: dotted.key=value (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or summary"),
    verify: bool = typer.Option(False, "--verify", help="on resume, check the sha256 of every committed shard (default: only of shards whose size or modification time looks wrong); a shard that fails is redone"),
    allow_shrink: bool = typer.Option(False, "--allow-shrink", help="let a plan smaller than OUT's committed shards (e.g. a lower --limit) delete the shards outside it (default: refuse, naming them)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="--executor local: threads (default: every CPU; 1 = one after another); the output is the same whatever the number"),
):
    """Run a pipeline config into OUT; rerunning into the same OUT resumes where it stopped."""
    from pairforge.pipeline.ledger import ResumeConflict
    from pairforge.pipeline.plan import PlanError
    from pairforge.sources.files import SourceListingError

    cfg = _load(config, set_)
    if executor not in ("ray", "local"):
        _fail(f"--executor must be ray or local, got {executor!r}")
    try:
        execute_run(cfg, out, limit, _local_executor(workers) if executor == "local" else executor, ray_address, quiet,
                    verify, allow_shrink)
    except (ResumeConflict, PlanError, SourceListingError, *_user_errors()) as e:
        _fail(str(e))


@app.command()
def validate(
    config: str = typer.Argument(..., help="YAML run config"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: dotted.key=value"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1),
):
    """Check a config and print the resolved config and the plan (stages, segments, shards)."""
    from pairforge.config import config_to_dict
    from pairforge.pipeline.plan import PlanError
    from pairforge.pipeline.runner import make_plan
    from pairforge.sources.files import SourceListingError

    cfg = _load(config, set_)
    try:
        plan = make_plan(cfg, None, limit)
    except (PlanError, SourceListingError) as e:
        _fail(str(e))
    console.print("[bold]resolved config[/]")
    console.print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False).rstrip(), highlight=False, markup=False)
    d = plan.describe()
    console.print("[bold]plan[/] (each segment runs in one worker process; GPU stages get their own pool)")
    for i, seg in enumerate(d["segments"]):
        console.print(f"  segment {i}: {' -> '.join(seg['stages'])}  [{seg['num_cpus']} CPU, {seg['num_gpus']} GPU per worker]", highlight=False, markup=False)
    console.print(f"source: {json.dumps(d['source'])}")
    console.print(f"{d['num_samples']} inputs in {d['shards']} shards of {d['samples_per_shard']}")
    console.print("[green]config OK[/]")


def _dataset_storage(directory: str):
    """The storage of an existing pairforge dataset directory, or a clean error."""
    from pairforge.io.dataset import is_dataset
    from pairforge.io.storage import open_storage

    try:
        storage = open_storage(directory)
        found = is_dataset(storage)
    except (ValueError, OSError) as e:
        _fail(f"{directory}: {e}")
    if not found:
        _fail(f"{directory} is not a pairforge dataset (no run.json, no shards/)")
    return storage


@app.command()
def info(
    directory: str = typer.Argument(..., help="a dataset directory (local or s3://)"),
    key: Optional[str] = typer.Option(None, "--key", help="print the JSON metadata of one sample"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    breakdown: bool = typer.Option(True, "--breakdown/--no-breakdown", help="count by degradation type/severity and source (reads every sample's JSON, never an image)"),
):
    """What a dataset directory holds: shards, samples, rejections by reason, degradations, sources."""
    from pairforge.io.dataset import META, DatasetReader, sample_meta
    from pairforge.report import dataset_info, print_info

    storage = _dataset_storage(directory)
    if key is not None:
        reader = DatasetReader(storage)
        for p in reader.problems:
            err.print(f"[yellow]warning:[/] {p}", highlight=False, soft_wrap=True)
        sample = reader.find(key, {META})
        if sample is None:
            _fail(f"no accepted sample with key {key!r} in {directory}")
        console.print_json(data=sample_meta(sample))
        return
    data = dataset_info(storage, breakdown=breakdown)
    if as_json:
        console.print_json(data=data)
    else:
        print_info(data, console)


@app.command()
def preview(
    directory: str = typer.Argument(..., help="a dataset directory (local or s3://)"),
    out: Path = typer.Option(Path("preview.png"), "--out", "-o", help="PNG to write"),
    n: int = typer.Option(16, "--n", min=1, max=256, help="number of pairs, spread over the whole dataset"),
    cell: int = typer.Option(192, "--cell", min=32, max=1024, help="pixels per image in the sheet (aspect ratios are kept)"),
    columns: Optional[int] = typer.Option(None, "--columns", min=1, max=32, help="pairs per row (default 2; with --by type: pairs per type, default 4)"),
    by: Optional[str] = typer.Option(None, "--by", help="'type': one row per degradation type"),
):
    """Write a contact-sheet PNG: HQ | LQ(s) per sample, each LQ labelled with its degradation."""
    from pairforge.io.dataset import DatasetReader
    from pairforge.preview import preview_sheet

    if by not in (None, "type"):
        _fail(f"--by must be 'type', got {by!r}")
    reader = DatasetReader(_dataset_storage(directory))
    for p in reader.problems:
        err.print(f"[yellow]warning:[/] {p}", highlight=False, soft_wrap=True)
    sheet = preview_sheet(reader, n=n, cell=cell, columns=columns, by=by)
    if sheet is None:
        _fail(f"{directory} holds no committed pairs")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    console.print(f"wrote {out} ({sheet.width}x{sheet.height})")


@app.command()
def report(
    directory: str = typer.Argument(..., help="a dataset directory (local or s3://)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: DIR/report.html)"),
    card: Optional[bool] = typer.Option(None, "--card/--no-card", help="also write the dataset card DIR/README.md (default: only when the report goes into DIR)"),
):
    """Write the run report: one self-contained HTML page (charts and pictures embedded, nothing loaded
    from the network), and the Hugging Face dataset card README.md. `run` writes both at the end."""
    from pairforge.runreport import write_card, write_report
    from pairforge.runreport.collect import collect

    storage = _dataset_storage(directory)
    data = collect(storage)
    for p in data.problems:
        err.print(f"[yellow]warning:[/] {p}", highlight=False, soft_wrap=True)
    where = write_report(storage, str(out) if out is not None else None, data=data)
    console.print(f"wrote {where}", highlight=False)
    if card if card is not None else out is None:
        console.print(f"wrote {write_card(storage, data)}", highlight=False)


@app.command()
def verify(
    directory: str = typer.Argument(..., help="a dataset directory (local or s3://)"),
    decode: bool = typer.Option(True, "--decode/--no-decode", help="also decode every image and parse every JSON"),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="shards checked in parallel"),
):
    """Check every committed shard against its record: sha256, sample counts and keys, decodable members.

    Prints one line per problem and exits with status 1 if there is any (a shard that fails is redone by
    the next `pairforge run` into the same directory)."""
    from pairforge.io.verify import verify_dataset

    storage = _dataset_storage(directory)
    report = verify_dataset(storage, decode=decode, workers=workers)
    for p in report.problems:
        console.print(str(p), highlight=False, markup=False, soft_wrap=True)
    summary = f"{report.shards} committed shards, {report.samples} pairs, {report.bytes / 1e6:.1f} MB checked"
    if report.problems:
        err.print(f"[bold red]{len(report.problems)} problem(s)[/] in {summary}", highlight=False)
        raise typer.Exit(1)
    console.print(f"OK: {summary}", highlight=False)


@app.command()
def degrade(
    input: str = typer.Argument(..., help="photos: a folder, glob, list file (.txt) or s3:// prefix"),
    output: str = typer.Argument(..., help="output directory (local or s3://); resumable like `run`"),
    preset: str = typer.Option("realesrgan", "--preset", "-p", help="realesrgan, realesrgan-x2, stablesr, first-order, bsrgan, bsrgan-plus, web, realworld or simple"),
    degrade_config: Optional[Path] = typer.Option(None, "--degrade-config", help="YAML of a full `degrade:` section (overrides --preset)"),
    crop: Optional[int] = typer.Option(None, "--crop", min=8, help="random-crop each photo to this size"),
    tiles_per_image: int = typer.Option(1, "--tiles-per-image", min=1, help="random crops per photo (with --crop)"),
    samples_per_shard: int = typer.Option(64, "--samples-per-shard", min=1),
    fmt: str = typer.Option("shards", "--format", help="shards (WebDataset) or folder (hq/ lq/ meta/ files)"),
    seed: int = typer.Option(0, "--seed", min=0),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1),
    use_ray: bool = typer.Option(False, "--ray", help="run on Ray instead of in this process (pays ~5 s of start-up on 2 cores unless Ray is already running; see README, 'Local or Ray')"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="with --ray: a running Ray cluster to use (e.g. auto), instead of starting one"),
    allow_shrink: bool = typer.Option(False, "--allow-shrink", help="let a smaller --limit delete committed shards outside it (default: refuse, naming them)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="threads in this process (default: every CPU); the output is the same whatever the number"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Degrade existing photos into HQ/LQ pairs, without Ray by default (the offline use case)."""
    from pairforge.config import ConfigError, degrade_section_for_preset, parse_config

    if fmt not in ("shards", "folder"):
        _fail(f"--format must be shards or folder, got {fmt!r}")
    if degrade_config is not None:
        section = yaml.safe_load(degrade_config.read_text())
        section = section.get("degrade", section) if isinstance(section, dict) else section
    else:
        try:
            section = degrade_section_for_preset(preset)
        except KeyError as e:
            _fail(str(e.args[0]))
    source = {"kind": "files", "paths": [input]}
    if crop:
        source["crop"] = {"mode": "random", "size": crop}
        source["tiles_per_image"] = tiles_per_image
    data = {
        "run": {"name": "degrade", "seed": seed},
        "source": source,
        "filters": [{"kind": "sanity", "min_size": 8, "min_std": 0.0, "max_clipped": 1.0, "max_aspect": 1000.0}],
        "degrade": section,
        "output": {"samples_per_shard": samples_per_shard, "format": "webdataset" if fmt == "shards" else "folder"},
    }
    try:
        cfg = parse_config(data, origin="pairforge degrade")
    except ConfigError as e:
        _fail(str(e))
    from pairforge.pipeline.ledger import ResumeConflict
    from pairforge.pipeline.plan import PlanError
    from pairforge.sources.files import SourceListingError

    if ray_address is not None and not use_ray:
        _fail("--ray-address needs --ray (the default runs in this process, without Ray)")
    try:
        execute_run(cfg, output, limit, "ray" if use_ray else _local_executor(workers), ray_address, quiet, allow_shrink=allow_shrink)
    except (ResumeConflict, PlanError, SourceListingError, *_user_errors()) as e:
        _fail(str(e))


from pairforge.filters.classifier_cli import train_classifier_command  # noqa: E402

app.command("train-classifier")(train_classifier_command)

from pairforge.filters.dedup_cli import dedup_index_command  # noqa: E402

app.command("dedup-index")(dedup_index_command)

from pairforge.synthesis.cli import models_app, prompts_cli  # noqa: E402

app.add_typer(models_app, name="models")
app.command("prompts")(prompts_cli)

from pairforge.synthesis.learn_tokens_cli import learn_tokens_command  # noqa: E402

app.command("learn-tokens")(learn_tokens_command)

from pairforge.train.cli import restore_command, train_command  # noqa: E402

app.command("train")(train_command)
app.command("restore")(restore_command)

from pairforge.evaluate.cli import evaluate_command  # noqa: E402

app.command("evaluate")(evaluate_command)


@app.command("configs")
def configs_command(
    as_json: bool = typer.Option(False, "--json", help="name, kind, description and path of each, as JSON"),
):
    """The configs shipped with pairforge, usable by name (`pairforge run quickstart`), with one line each."""
    from pairforge.named_configs import configs_root, list_named_configs

    found = list_named_configs()
    if as_json:
        print(json.dumps([{"name": c.name, "kind": c.kind, "description": c.description, "path": str(c.path)} for c in found], indent=2))
        return
    t = Table(title=f"named configs ({configs_root()})")
    t.add_column("name")
    t.add_column("kind")
    t.add_column("description")
    for c in found:
        t.add_row(c.name, c.kind, c.description)
    console.print(t)


@app.command()
def gallery(
    out: Path = typer.Argument(..., help="folder for one contact sheet per degradation type"),
    photos: str = typer.Option("astronaut,coffee,chelsea,rocket,camera", "--photos", help="bundled photo names, comma separated"),
    inputs: Optional[Path] = typer.Option(None, "--input", help="a folder of your own photos instead of bundled ones"),
    types: Optional[str] = typer.Option(None, "--types", help="comma-separated subset of the nine types"),
    severities: str = typer.Option("light,medium,heavy", "--severities"),
    tile: int = typer.Option(192, "--tile", min=32, max=1024, help="pixels per cell"),
    seed: int = typer.Option(0, "--seed", min=0),
    degrade_config: Optional[str] = typer.Option(
        None, "--degrade-config",
        help="a YAML file (a run config with degrade:, or a bare degrade section with kind:) or a named config: "
        "draw OUT/<name>.png, one row per photo, HQ then --columns LQs of that config"),
    columns: int = typer.Option(4, "--columns", min=1, max=16, help="LQs per photo with --degrade-config"),
):
    """Contact sheets of the nine real-world degradations (rows: photos; columns: clean + severities), or
    with --degrade-config of any degrade config (chain presets, real-world types, mixes)."""
    from pairforge.degradations.realworld.gallery import make_gallery
    from pairforge.io.images import ImageRejected, decode_image
    from pairforge.sources.bundled import load_bundled_photo
    from pairforge.sources.config import BUNDLED_PHOTOS

    images = []
    if inputs is not None:
        for p in sorted(inputs.iterdir()):
            try:
                images.append(decode_image(p.read_bytes(), str(p))[0])
            except ImageRejected as e:
                err.print(f"skipping {p}: {e.reason}")
    else:
        for name in photos.split(","):
            if name not in BUNDLED_PHOTOS:
                _fail(f"--photos: unknown bundled photo {name!r}; allowed: {', '.join(BUNDLED_PHOTOS)}")
            images.append(load_bundled_photo(name))
    if len(images) < 2:
        _fail("the gallery needs at least two photos (reflection uses another photo as its second layer)")
    if degrade_config is not None:
        from pairforge.config import ConfigError, read_yaml_config
        from pairforge.degradations.sheet import degrade_section, degrade_sheet

        try:
            data, origin = read_yaml_config(degrade_config, what="degrade config")
            cfg = degrade_section(data, origin)
        except ConfigError as e:
            _fail(str(e))
        path = degrade_sheet(images, cfg, out / f"{Path(origin).stem}.png", columns=columns, seed=seed, tile=tile)
        console.print(f"wrote {path}")
        return
    written = make_gallery(
        images, out, severities=tuple(severities.split(",")), types=types.split(",") if types else None, seed=seed, tile=tile
    )
    for p in written:
        console.print(f"wrote {p}")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=os.environ.get("PAIRFORGE_LOG", "WARNING"))
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
