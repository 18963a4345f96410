"""Commands that store sites and build their indexes."""

from __future__ import annotations

from pathlib import Path

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import (
    device_option,
    format_option,
    model_option,
    seed_option,
    site_option,
)
from harmonize.core.config import DEFAULT_INDEX, INDEX_TYPES
from harmonize.core.errors import HarmonizeError


def _path_option(flag: str, help: str):
    return click.option(flag, type=click.Path(path_type=Path), help=help)


@cli.command("add-site")
@click.argument("name")
@_path_option(
    "--vocab", "CSV/TSV/Parquet with columns code, description [system, parent_code, frequency]."
)
@_path_option(
    "--omop", "An OMOP CDM (DuckDB file or folder of tables): concepts in use and events."
)
@click.option(
    "--omop-codes",
    type=click.Choice(["standard", "source"]),
    help="With --omop: the codes of the site, standard concept_ids (the default) or the local "
    "*_source_value codes.",
)
@_path_option("--meds", "A MEDS dataset folder (metadata/codes.parquet, data/**/*.parquet).")
@_path_option(
    "--athena",
    "An OMOP vocabulary download from Athena (folder with CONCEPT.csv, VOCABULARY.csv "
    "[, CONCEPT_SYNONYM.csv, CONCEPT_RELATIONSHIP.csv, CONCEPT_ANCESTOR.csv]); codes are "
    "concept_ids.",
)
@click.option(
    "--vocabulary",
    "vocabularies",
    multiple=True,
    metavar="ID",
    help="With --athena: keep this vocabulary_id only (repeatable), e.g. SNOMED.",
)
@click.option(
    "--domain", "domains", multiple=True, metavar="ID",
    help="With --athena: keep this domain_id only (repeatable), e.g. Condition.",
)  # fmt: skip
@click.option(
    "--concept-class", "concept_classes", multiple=True, metavar="ID",
    help="With --athena: keep this concept_class_id only (repeatable).",
)  # fmt: skip
@click.option(
    "--standard/--no-standard",
    default=None,
    help="With --athena: standard concepts only (the default: a vocabulary site is a mapping "
    "target), or also non-standard ones, searched and followed by 'Maps to' to standard ones.",
)
@click.option(
    "--include-invalid",
    is_flag=True,
    default=None,
    help="With --athena: keep concepts and 'Maps to' edges that have an invalid_reason.",
)
@_path_option("--events", "Optional long-format events: subject_id, code [, time, value].")
@_path_option(
    "--patients",
    "Patients for a prediction task: a wide table (one column per code, values "
    "P/A/M or levels, plus the label column), or long events with --labels.",
)
@_path_option(
    "--test-patients",
    "Held-out patients (wide); without it a seeded stratified hold-out is used.",
)
@_path_option("--labels", "With long --patients: subject_id, the label column [, split].")
@click.option("--label", "label", help="The binary task as COLUMN=VALUE, e.g. diagnosis=I.")
@_path_option(
    "--levels",
    "Texts for levels other than P/A/M: CSV code,value,text. Levels it does not name get "
    "'<description>: <value>'.",
)
@click.option(
    "--strict-levels",
    is_flag=True,
    help="Refuse a level other than P/A/M that --levels does not name.",
)
@click.option(
    "--test-fraction",
    default=0.2,
    show_default=True,
    type=float,
    help="Hold-out share when no --test-patients is given.",
)
@seed_option("Seed of the hold-out.")
@click.option("--replace", is_flag=True, help="Replace the site if it already exists.")
@pass_state
def add_site_cmd(state: State, name: str, replace: bool, **inputs) -> None:
    """Store a site's vocabulary (and events or patients) in the workspace.

    \b
    Examples:
      harmonize add-site siteA --vocab a.csv --events a_events.csv
      harmonize add-site siteA --vocab a.csv --patients a_patients.csv --label diagnosis=I
      harmonize add-site eunomia --omop cdm.duckdb
      harmonize add-site eunomia_src --omop cdm.duckdb --omop-codes source
      harmonize add-site mimic --meds meds_dataset/
      harmonize add-site snomed --athena vocabulary_download/ --vocabulary SNOMED --domain Condition
    """
    from harmonize.sites.inputs import SiteInputs, add_site_from

    result = add_site_from(state.ws, name, SiteInputs(**inputs), replace=replace)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(result.message)


@cli.command("sites")
@format_option()
@pass_state
def sites_cmd(state: State, fmt: str) -> None:
    """List sites with their concept counts and indexes (and whether those are stale).

    \b
    Example:
      harmonize sites
    """
    from harmonize.core.render import render_rows
    from harmonize.sites.listing import SITE_COLUMNS, list_sites

    click.echo(render_rows(list_sites(state.ws).rows(), fmt, SITE_COLUMNS), nl=False)


@cli.command("build-index")
@site_option("The site whose descriptions to embed.")
@model_option()
@device_option()
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
