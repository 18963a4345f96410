"""The ``harmonize`` command line: each command parses, calls one library function, prints.

>>> from click.testing import CliRunner
>>> CliRunner().invoke(cli, ["--version"]).output.startswith("harmonize")
True
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import duckdb
import pandas as pd

from harmonize import __version__, sql
from harmonize.config import (
    DEFAULT_DEVICE,
    DEFAULT_INDEX,
    DEFAULT_K,
    DEFAULT_MODEL,
    DEFAULT_STRATEGY,
    DEMO_WORKSPACE,
    DEVICES,
    INDEX_TYPES,
    PREVIEW_ROWS,
    STRATEGIES,
    WORKSPACE_ENV,
)
from harmonize.errors import HarmonizeError, QueryError
from harmonize.experiment import MODELS, SCENARIOS
from harmonize.export import EXPORT_FORMATS
from harmonize.features import READINGS
from harmonize.output import FORMATS, render, shorten
from harmonize.workspace import Workspace


class HarmonizeGroup(click.Group):
    """Turns every HarmonizeError and usage error into ``Error: ...`` with exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarmonizeError as exc:
            raise click.ClickException(str(exc)) from exc

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(1)
        except click.Abort:
            if not standalone_mode:
                raise
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


class State:
    def __init__(self, workspace: Path, quiet: bool, explicit: bool):
        self.ws = Workspace(workspace)
        self.quiet = quiet
        self.explicit_workspace = explicit

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)


pass_state = click.make_pass_decorator(State)


@click.group(cls=HarmonizeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    envvar=WORKSPACE_ENV,
    show_default="current directory",
    help=f"Workspace folder (harmonize.duckdb + indexes/). Env: {WORKSPACE_ENV}.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter, results only.")
@click.version_option(__version__, prog_name="harmonize")
@click.pass_context
def cli(ctx: click.Context, workspace: Path, quiet: bool) -> None:
    """Map clinical concept codes between hospital sites with embeddings, FAISS and DuckDB.

    \b
    Example:
      harmonize add-site siteA --vocab a.csv
      harmonize add-site siteB --vocab b.csv
      harmonize build-index --site siteA && harmonize build-index --site siteB
      harmonize map --source siteB --target siteA --k 5
    """
    source = ctx.get_parameter_source("workspace")
    explicit = source not in (click.core.ParameterSource.DEFAULT, None)
    ctx.obj = State(workspace, quiet, explicit)


@cli.command("add-site")
@click.argument("name")
@click.option(
    "--vocab",
    "vocab",
    type=click.Path(path_type=Path),
    help="CSV/TSV/Parquet with columns code, description [system, parent_code, frequency].",
)
@click.option(
    "--omop",
    type=click.Path(path_type=Path),
    help="An OMOP CDM (DuckDB file or folder of tables): concepts in use and events.",
)
@click.option(
    "--meds",
    type=click.Path(path_type=Path),
    help="A MEDS dataset folder (metadata/codes.parquet, data/**/*.parquet).",
)
@click.option(
    "--events",
    "events",
    type=click.Path(path_type=Path),
    help="Optional long-format events: subject_id, code [, time, value].",
)
@click.option(
    "--patients",
    type=click.Path(path_type=Path),
    help="Patients for a prediction task: a wide table (one column per code, values "
    "P/A/M or levels, plus the label column), or long events with --labels.",
)
@click.option(
    "--test-patients",
    type=click.Path(path_type=Path),
    help="Held-out patients (wide); without it a seeded stratified hold-out is used.",
)
@click.option(
    "--labels",
    "labels",
    type=click.Path(path_type=Path),
    help="With long --patients: subject_id, the label column [, split].",
)
@click.option("--label", "label", help="The binary task as COLUMN=VALUE, e.g. diagnosis=I.")
@click.option(
    "--levels",
    type=click.Path(path_type=Path),
    help="Texts for levels other than P/A/M: CSV code,value,text.",
)
@click.option(
    "--test-fraction",
    default=0.2,
    show_default=True,
    type=float,
    help="Hold-out share when no --test-patients is given.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the hold-out.")
@click.option("--replace", is_flag=True, help="Replace the site if it already exists.")
@pass_state
def add_site_cmd(
    state: State,
    name: str,
    vocab: Path | None,
    omop: Path | None,
    meds: Path | None,
    events: Path | None,
    patients: Path | None,
    test_patients: Path | None,
    labels: Path | None,
    label: str | None,
    levels: Path | None,
    test_fraction: float,
    seed: int,
    replace: bool,
) -> None:
    """Store a site's vocabulary (and events or patients) in the workspace.

    \b
    Examples:
      harmonize add-site siteA --vocab a.csv --events a_events.csv
      harmonize add-site siteA --vocab a.csv --patients a_patients.csv --label diagnosis=I
      harmonize add-site eunomia --omop cdm.duckdb
      harmonize add-site mimic --meds meds_dataset/
    """
    from harmonize.patients import LabelSpec
    from harmonize.sites import PatientInput, add_site

    given = [flag for flag, v in (("--vocab", vocab), ("--omop", omop), ("--meds", meds)) if v]
    if len(given) != 1:
        raise HarmonizeError("give exactly one of --vocab FILE, --omop PATH or --meds DIR")
    if (omop or meds) and any(x is not None for x in (events, patients)):
        raise HarmonizeError(f"{given[0]} brings its own events: drop --events/--patients")
    if omop or meds:
        if omop:
            from harmonize.omop import read_omop as read
        else:
            from harmonize.meds import read_meds as read
        frame, site_events = read(omop or meds)
        result = add_site(state.ws, name, None, vocab=frame, events=site_events, replace=replace)
        click.echo(result.message)
        return

    patient_input = None
    if patients is not None:
        if label is None:
            raise HarmonizeError("--patients needs --label COLUMN=VALUE (e.g. diagnosis=I)")
        patient_input = PatientInput(
            patients,
            LabelSpec.parse(label),
            test_patients=test_patients,
            labels=labels,
            levels=levels,
            test_fraction=test_fraction,
            random_state=seed,
        )
    elif any(x is not None for x in (test_patients, labels, label, levels)):
        raise HarmonizeError("--test-patients, --labels, --label and --levels need --patients")
    result = add_site(
        state.ws, name, vocab, events_path=events, replace=replace, patients=patient_input
    )
    click.echo(result.message)


@cli.command("sites")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_state
def sites_cmd(state: State, fmt: str) -> None:
    """List sites with their concept counts and indexes (and whether those are stale).

    \b
    Example:
      harmonize sites
    """
    from harmonize.sites import list_sites

    rows = []
    for info in list_sites(state.ws):
        indexes = ", ".join(f"{s.model} ({s.state})" for s in info.indexes) or "none"
        rows.append(
            {
                "site": info.site,
                "concepts": info.n_concepts,
                "events": info.n_events,
                "subjects": info.n_subjects,
                "indexes": indexes,
            }
        )
    click.echo(render(pd.DataFrame(rows), fmt), nl=False)


@cli.command("build-index")
@click.option("--site", required=True, help="The site whose descriptions to embed.")
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="minilm, lexical, hf-cls:PATH, hf-mean:PATH, precomputed:FILE, or a folder.",
)
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULT_DEVICE, show_default=True)
@click.option(
    "--index",
    "index_type",
    type=click.Choice(INDEX_TYPES),
    default=DEFAULT_INDEX,
    show_default=True,
    help="flat is exact; hnsw is approximate and faster at scale.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the index is up to date.")
@pass_state
def build_index_cmd(
    state: State, site: str, model: str, device: str, index_type: str, force: bool
) -> None:
    """Embed a site's descriptions (cached) and build its FAISS index.

    \b
    Example:
      harmonize build-index --site siteA --model minilm
    """
    from harmonize.index import build_site_index

    if "+" in model:
        raise HarmonizeError(
            f"build one index per model: {' and '.join(f'--model {m}' for m in model.split('+'))}"
        )
    result = build_site_index(
        state.ws.require(),
        site,
        model,
        device=device,
        index_type=index_type,
        force=force,
        progress=not state.quiet,
    )
    click.echo(result.message)


@cli.command("map")
@click.option("--source", required=True, help="Site whose concepts are mapped.")
@click.option("--target", required=True, help="Site whose concepts they are mapped onto.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option(
    "--k",
    default=DEFAULT_K,
    show_default=True,
    type=int,
    help="Candidates kept per source concept.",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="Cosine below which a source concept gets no mapping.",
)
@click.option(
    "--strategy", type=click.Choice(STRATEGIES), default=DEFAULT_STRATEGY, show_default=True
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the mappings to this CSV file.",
)
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULT_DEVICE, show_default=True)
@click.option(
    "--limit",
    default=PREVIEW_ROWS,
    show_default=True,
    type=int,
    help="Rows of the mapping to print (0 for all).",
)
@click.option(
    "--min-confidence",
    type=float,
    default=None,
    help="Calibrated probability below which a concept gets no mapping "
    "(needs 'harmonize calibrate').",
)
@pass_state
def map_cmd(
    state: State,
    source: str,
    target: str,
    model: str,
    k: int,
    min_score: float | None,
    strategy: str,
    output: Path | None,
    device: str,
    limit: int,
    min_confidence: float | None,
) -> None:
    """Map every concept of SOURCE onto its nearest concepts of TARGET.

    \b
    Example:
      harmonize map --source siteB --target siteA --k 5 --strategy mutual
    """
    from harmonize.mapping import map_sites

    result = map_sites(
        state.ws,
        source,
        target,
        model=model,
        k=k,
        min_score=min_score,
        strategy=strategy,
        output=output,
        device=device,
        min_confidence=min_confidence,
    )
    frame = result.mappings.copy()
    if frame["confidence"].isna().all():
        frame = frame.drop(columns="confidence")  # no calibration for this model yet
    for column in ("source_description", "target_description"):
        frame[column] = frame[column].map(shorten)
    shown = frame if limit <= 0 else frame.head(limit)
    click.echo(render(shown, "table"), nl=False)
    if len(frame) > len(shown):
        click.echo(
            f"... {len(frame) - len(shown)} more rows (use --limit 0, --output FILE.csv, "
            "or 'harmonize sql' on mapped_concepts)"
        )
    click.echo(result.summary)
    if output is not None:
        click.echo(f"wrote {output}")


@cli.command("sql")
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_state
def sql_cmd(state: State, query: str, fmt: str) -> None:
    """Run read-only SQL on the workspace (tables sites, concepts, events, candidates,
    mappings; view mapped_concepts).

    \b
    Example:
      harmonize sql "SELECT * FROM mapped_concepts WHERE source_site = 'siteB' LIMIT 5"
    """
    with state.ws.connect(read_only=True) as con:
        try:
            frame = con.execute(query).df()
        except duckdb.Error as exc:
            raise QueryError(f"SQL failed: {exc}") from exc
        except TypeError as exc:  # DuckDB returns no result for statements without one
            raise QueryError(f"SQL returned no result set: {exc}") from exc
    click.echo(render(frame, fmt), nl=False)


@cli.command("query")
@click.argument("name", required=False)
@click.option(
    "--param",
    "params",
    type=(str, str),
    multiple=True,
    metavar="KEY VALUE",
    help="A parameter of the query (repeatable).",
)
@click.option("--list", "list_", is_flag=True, help="List the named queries and their parameters.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_state
def query_cmd(
    state: State, name: str | None, params: tuple[tuple[str, str], ...], list_: bool, fmt: str
) -> None:
    """Run a named query from sql/NAME.sql (or the workspace's sql/) with bound parameters.

    \b
    Example:
      harmonize query unmapped --param source siteB --param target siteA
      harmonize query --list
    """
    if list_ or name is None:
        rows = [
            {"query": q.name, "params": ", ".join(q.params) or "-", "description": q.description}
            for q in sql.list_queries(state.ws.sql_dir)
        ]
        click.echo(render(pd.DataFrame(rows), fmt), nl=False)
        return
    query = sql.load_query(name, state.ws.sql_dir)
    values = dict(params)
    if len(values) != len(params):
        raise QueryError("a --param was given twice")
    with state.ws.connect(read_only=True) as con:
        try:
            frame = sql.execute(con, query, values).df()
        except duckdb.Error as exc:
            raise QueryError(f"query '{name}' failed: {exc}") from exc
    click.echo(render(frame, fmt), nl=False)


@cli.command("eval-map")
@click.option("--source", required=True, help="Site whose concepts were mapped.")
@click.option("--target", required=True, help="Site they were mapped onto.")
@click.option(
    "--gold",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV/Parquet with source_code, target_code (many-to-many allowed).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_state
def eval_map_cmd(state: State, source: str, target: str, gold: Path, fmt: str) -> None:
    """Score the stored mapping of SOURCE onto TARGET against a gold standard: top-1/5/10,
    MRR, coverage, precision and recall. The result is stored in table map_evaluations.

    \b
    Example:
      harmonize eval-map --source target --target source --gold truth.csv --format json
    """
    from harmonize.evaluate import evaluate_mapping

    result = evaluate_mapping(state.ws, source, target, gold)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(render(pd.DataFrame([result]), "table"), nl=False)
    if result["n_unknown"]:
        click.echo(
            f"({result['n_unknown']} gold source codes are not concepts of '{source}' "
            "and were left out)"
        )
    if result["k"] < 10:
        click.echo(f"(candidates were stored with k={result['k']}: top10 counts only those)")


@cli.command("calibrate")
@click.option("--source", required=True)
@click.option("--target", required=True)
@click.option(
    "--gold",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV source_code,target_code: the right answers for some source concepts.",
)
@pass_state
def calibrate_cmd(state: State, source: str, target: str, gold: Path) -> None:
    """Learn P(mapping is right | cosine) for the pair's model from a gold standard (isotonic
    regression); later maps store it as `confidence` and honour --min-confidence.

    \b
    Example:
      harmonize calibrate --source target --target source --gold truth.csv
    """
    from harmonize.calibration import calibrate

    result = calibrate(state.ws, source, target, gold)
    click.echo(render(result["reliability"], "table"), nl=False)
    click.echo(
        f"calibrated model {result['model']} on {result['n']} labelled concepts: Brier "
        f"{result['brier']:.3f} (raw cosine as a probability: {result['brier_raw_cosine']:.3f})"
    )


@cli.command("export")
@click.option("--source", required=True)
@click.option("--target", required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    required=True,
    help="sssom (TSV), fhir (R4 ConceptMap JSON), omop-stcm (CSV), usagi (CSV).",
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def export_cmd(state: State, source: str, target: str, fmt: str, output: Path) -> None:
    """Write the stored mappings of SOURCE onto TARGET for other tools.

    \b
    Example:
      harmonize export --source siteB --target siteA --format sssom -o b_to_a.sssom.tsv
    """
    from harmonize.export import export_mappings

    n = export_mappings(state.ws, source, target, fmt, output)
    click.echo(f"wrote {n} mappings of '{source}' onto '{target}' as {fmt} to {output}")


def _sizes(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise HarmonizeError(
            f"--target-sizes must be integers like 50,100,200, got '{text}'"
        ) from exc


@cli.command("evaluate")
@click.option("--source", required=True, help="Site whose model is transferred.")
@click.option("--target", required=True, help="Site it is transferred to (test patients here).")
@click.option(
    "--embedding",
    default=DEFAULT_MODEL,
    show_default=True,
    help="Any --model spec, or onehot (one dimension per concept-state text).",
)
@click.option(
    "--reading",
    type=click.Choice(READINGS),
    default="native",
    show_default=True,
    help="How the target is read: its own texts, through stored mappings, or a gold map.",
)
@click.option(
    "--gold",
    type=click.Path(path_type=Path),
    help="With --reading oracle: CSV source_code (target site), target_code (source site).",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(SCENARIOS),
    help="Repeatable; default all five.",
)
@click.option("--target-sizes", help="Comma-separated target training sizes (default: all).")
@click.option("--seeds", default=1, show_default=True, type=int, help="Repetitions.")
@click.option("--model", "model", type=click.Choice(MODELS), default="cnn", show_default=True)
@click.option(
    "--epochs",
    default=20,
    show_default=True,
    type=int,
    help="The study's setting: --epochs 50 --steps-per-epoch 100 --lr 0.001.",
)
@click.option("--steps-per-epoch", default=50, show_default=True, type=int)
@click.option(
    "--lr",
    default=0.01,
    show_default=True,
    type=float,
    help="SGD learning rate from scratch (fine-tuning always uses 0.01, as the study did).",
)
@click.option(
    "--bootstrap",
    default=200,
    show_default=True,
    type=int,
    help="Bootstrap resamples for the AUROC interval.",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--missing",
    type=click.Choice(["absent", "separate"]),
    default="absent",
    show_default=True,
    help="Embed a missing finding as absent (the study) or apart.",
)
@pass_state
def evaluate_cmd(
    state: State,
    source: str,
    target: str,
    embedding: str,
    reading: str,
    gold: Path | None,
    scenarios: tuple[str, ...],
    target_sizes: str | None,
    seeds: int,
    model: str,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    bootstrap: int,
    device: str,
    missing: str,
) -> None:
    """Train at SOURCE, transfer to TARGET, and score each scenario by AUROC on TARGET's test
    patients. Results go to table evaluations, a markdown report and a PNG learning curve.

    \b
    Example:
      harmonize evaluate --source source --target target --reading mapped \\
        --target-sizes 25,50,100 --scenario local --scenario finetune-all
    """
    from harmonize.experiment import EvalConfig, run_evaluation, summarize

    config = EvalConfig(
        source=source,
        target=target,
        embedding=embedding,
        reading=reading,
        scenarios=scenarios or SCENARIOS,
        target_sizes=_sizes(target_sizes),
        seeds=seeds,
        model=model,
        gold=gold,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        bootstrap=bootstrap,
        device=device,
        missing=missing,
    )
    result = run_evaluation(state.ws, config, progress=not state.quiet)
    click.echo(render(summarize(result.results), "table"), nl=False)
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"run {result.run_id}: {len(result.results)} results stored in table evaluations")
    click.echo(f"report: {result.report}")
    click.echo(f"plot:   {result.plot}")


@cli.command("bench-map")
@click.argument("benchmark", type=click.Choice(["icd"]))
@click.option(
    "--direction", type=click.Choice(["10to9", "9to10"]), default="10to9", show_default=True
)
@click.option(
    "--sample",
    type=int,
    default=None,
    help="Held-out source codes to map (default: all; ICD-10-CM takes minutes).",
)
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--k", default=10, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_state
def bench_map_cmd(
    state: State,
    benchmark: str,
    direction: str,
    sample: int | None,
    model: str,
    k: int,
    seed: int,
    fmt: str,
) -> None:
    """Map ICD-10-CM onto ICD-9-CM (or back) and score against the CMS GEMs, on held-out codes.

    \b
    Example:
      harmonize --workspace bench bench-map icd --direction 10to9 --sample 1000
    """
    from harmonize.bench import bench_icd

    echo = (lambda _: None) if state.quiet or fmt == "json" else click.echo
    result = bench_icd(
        state.ws,
        direction,
        sample=sample,
        model=model,
        k=k,
        random_state=seed,
        progress=not state.quiet,
        echo=echo,
    )
    if fmt == "json":
        click.echo(
            json.dumps(
                {**result.overall, "exact": result.exact, "direction": direction, "model": model},
                indent=2,
            )
        )
        return
    click.echo(render(result.rows(), "table"), nl=False)
    click.echo(
        f"({result.seconds:.0f}s; {result.n_train_codes} GEM source codes held back "
        "for training learned methods)"
    )


@cli.command("review")
@click.option("--source", required=True)
@click.option("--target", required=True)
@click.option(
    "--limit", default=PREVIEW_ROWS, show_default=True, type=int, help="Rows to show (0 for all)."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_state
def review_cmd(state: State, source: str, target: str, limit: int, fmt: str) -> None:
    """List the mappings most worth checking: undecided ones, least confident first.

    \b
    Example:
      harmonize review --source siteB --target siteA --limit 10
    """
    from harmonize.review import review_queue

    queue = review_queue(state.ws, source, target)
    shown = queue if limit <= 0 else queue.head(limit)
    click.echo(render(shown, fmt), nl=False)
    if fmt == "table":
        click.echo(f"{len(queue)} mappings await review")


def _decision_command(decision: str, takes_target: bool):
    """accept / reject / set share their options; only set takes a TARGET_CODE."""

    def command(
        state: State,
        source: str,
        target: str,
        reviewer: str | None,
        note: str | None,
        code: str,
        target_code: str | None = None,
    ) -> None:
        from harmonize.review import decide

        message = decide(
            state.ws,
            source,
            target,
            code,
            decision,
            target_code=target_code,
            reviewer=reviewer,
            note=note,
        )
        click.echo(message)

    # Decorators attach parameters last-first, so the later positional argument goes first.
    command = pass_state(command)
    if takes_target:
        command = click.argument("target_code")(command)
    command = click.argument("code")(command)
    command = click.option("--note", help="Why, for the record.")(command)
    command = click.option(
        "--reviewer", help="Who decides (default: $HARMONIZE_REVIEWER or login name)."
    )(command)
    command = click.option("--target", required=True)(command)
    return click.option("--source", required=True)(command)


cli.command(
    "accept",
    help="Accept the stored mapping of source concept CODE.\n\n"
    "Example: harmonize accept --source siteB --target siteA RESP_017",
)(_decision_command("accept", False))
cli.command(
    "reject",
    help="Reject the stored mapping of CODE; re-mapping never picks it again."
    "\n\nExample: harmonize reject --source siteB --target siteA SKIN_002",
)(_decision_command("reject", False))
cli.command(
    "set",
    help="Map CODE to TARGET_CODE by hand; re-mapping keeps it.\n\n"
    "Example: harmonize set --source siteB --target siteA ENT_010 C0027424",
)(_decision_command("set", True))


@cli.command("export-events")
@click.option("--site", required=True, help="Site whose events to export.")
@click.option("--into", required=True, help="Site whose codes they are written in.")
@click.option(
    "--format", "fmt", type=click.Choice(["meds", "parquet"]), default="meds", show_default=True
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="A new folder (meds) or a .parquet file.",
)
@pass_state
def export_events_cmd(state: State, site: str, into: str, fmt: str, output: Path) -> None:
    """Write SITE's events recoded into INTO's codes through the stored mappings.

    \b
    Example:
      harmonize export-events --site target --into source --format meds -o target_in_source/
    """
    from harmonize.export import export_events

    click.echo(export_events(state.ws, site, into, fmt, output))


@cli.command("bench")
@click.option("--quick", is_flag=True, help="Small sizes: about two minutes on 2 CPU cores.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def bench_cmd(quick: bool, device: str, fmt: str) -> None:
    """Time each stage against its reference in the same run (ratio = ours / reference speed).

    \b
    Example:
      harmonize bench --quick --format json
    """
    from harmonize.speed import run_speed

    result = run_speed(quick=quick, device=device)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    search = result["search"]
    rows = [
        {
            "stage": f"search {kind}",
            "ours_per_s": search[kind]["ours_per_s"],
            "reference_per_s": search["reference_per_s"],
            "ratio": search[kind]["ratio"],
            "note": f"recall@10 {search[kind]['recall_at_10']:.3f} vs numpy brute force",
        }
        for kind in ("flat", "hnsw")
    ]
    rows.append(
        {
            "stage": "sql recode",
            **{k: result["sql"][k] for k in ("ours_per_s", "reference_per_s", "ratio")},
            "note": f"{result['sql']['n_events']:,} events vs bare group-by",
        }
    )
    enc = result["encode"]
    rows.append(
        {
            "stage": "encode",
            **{k: enc[k] for k in ("ours_per_s", "reference_per_s", "ratio")},
            "note": f"{enc['n_texts']} texts on {enc['device']} vs plain encode()",
        }
    )
    click.echo(render(pd.DataFrame(rows), "table", floatfmt=".2f"), nl=False)
    click.echo(f"peak RSS {result['peak_rss_mb']:.0f} MB")


@cli.command("demo")
@click.option(
    "--patients",
    default=1000,
    show_default=True,
    type=click.IntRange(10, 1_000_000),
    help="Patients sampled per site.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--model",
    "models",
    multiple=True,
    default=("lexical", "minilm"),
    show_default=True,
    help="Models to compare (repeatable).",
)
@click.pass_context
def demo_cmd(ctx: click.Context, patients: int, seed: int, models: tuple[str, ...]) -> None:
    """Build the two-site influenza demo and show what mapping gets right.

    Writes into --workspace when given, else ./demo-workspace.
    """
    from harmonize.demo import run_demo

    state: State = ctx.obj
    ws = state.ws if state.explicit_workspace else Workspace(Path(DEMO_WORKSPACE))
    result = run_demo(
        ws,
        n_patients=patients,
        models=models,
        random_state=seed,
        echo=click.echo,
        progress=not state.quiet,
    )
    rows = [
        {"model": m, "n": int(v["n"]), "top1": v["top1"], "top5": v["top5"], "mrr": v["mrr"]}
        for m, v in result.metrics.items()
    ]
    click.echo("\nMapping accuracy, target -> source, against the demo's true mapping:")
    click.echo(render(pd.DataFrame(rows), "table"), nl=False)
    recoded = result.recoded
    first = recoded[
        (recoded["subject_id"] == recoded["subject_id"].iloc[0]) & (recoded["value"] == "P")
    ]
    click.echo(
        f"\nTarget patient {recoded['subject_id'].iloc[0]}'s findings in source codes "
        "(query recode_events):"
    )
    click.echo(
        render(first[["code", "mapped_code", "mapped_description", "value", "score"]], "table"),
        nl=False,
    )
    ws_flag = f"--workspace {ws.root}"
    click.echo("\nTry next:")
    click.echo(f"  harmonize {ws_flag} sites")
    click.echo(f'  harmonize {ws_flag} sql "SELECT * FROM mapped_concepts ORDER BY score LIMIT 10"')
    click.echo(f"  harmonize {ws_flag} query unmapped --param source target --param target source")
    click.echo(f"  harmonize {ws_flag} map --source target --target source --strategy mutual")
    click.echo(
        f"  harmonize {ws_flag} evaluate --source source --target target --reading mapped "
        "--target-sizes 50,200"
    )


def main() -> None:
    cli(prog_name="harmonize")


if __name__ == "__main__":
    main()
