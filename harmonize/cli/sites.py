"""Commands that store sites and build their indexes."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from harmonize.cli.base import State, cli, pass_state
from harmonize.core.config import DEFAULT_DEVICE, DEFAULT_INDEX, DEFAULT_MODEL, DEVICES, INDEX_TYPES
from harmonize.core.errors import HarmonizeError
from harmonize.core.render import FORMATS, render
from harmonize.core.timing import stage


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
    "--omop-codes",
    type=click.Choice(["standard", "source"]),
    help="With --omop: the codes of the site, standard concept_ids (the default) or the local "
    "*_source_value codes.",
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
    omop_codes: str | None,
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
      harmonize add-site eunomia_src --omop cdm.duckdb --omop-codes source
      harmonize add-site mimic --meds meds_dataset/
    """
    from harmonize.sites.patients import LabelSpec
    from harmonize.sites.registry import PatientInput, add_site

    given = [flag for flag, v in (("--vocab", vocab), ("--omop", omop), ("--meds", meds)) if v]
    if len(given) != 1:
        raise HarmonizeError("give exactly one of --vocab FILE, --omop PATH or --meds DIR")
    if (omop or meds) and any(x is not None for x in (events, patients)):
        raise HarmonizeError(f"{given[0]} brings its own events: drop --events/--patients")
    if omop_codes is not None and not omop:
        raise HarmonizeError("--omop-codes needs --omop")
    if omop or meds:
        skipped = ""
        if omop:
            from harmonize.sites.omop import read_omop_site

            with stage("read omop"):
                site = read_omop_site(omop, "source" if omop_codes == "source" else "standard")
            frame, site_events = site.vocab, site.events
            if omop_codes == "source":
                skipped = f" ({site.skipped} events without a source value left out)"
        else:
            from harmonize.sites.meds import read_meds

            with stage("read meds"):
                frame, site_events = read_meds(meds)
        result = add_site(state.ws, name, None, vocab=frame, events=site_events, replace=replace)
        click.echo(result.message + skipped)
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
    from harmonize.sites.registry import list_sites

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
    help="minilm, minilm-int8 (int8, CPU, ~2.5x faster), lexical, hf-cls:PATH, hf-mean:PATH, "
    "precomputed:FILE, or a folder.",
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
    from harmonize.index.site_index import build_site_index

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
