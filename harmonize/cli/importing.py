"""``harmonize import``: earlier mapping work (a Usagi CSV, an OMOP source_to_concept_map)
brought in as decisions or known pairs."""

from __future__ import annotations

from pathlib import Path

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import LazyChoice, output_option, source_option, target_option


@cli.command("import")
@source_option("Site whose codes the file maps (its source codes).")
@target_option("Site of the file's target concepts (concept_ids).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=LazyChoice("harmonize.mapping.import_mappings", "IMPORT_FORMATS"),
    help="usagi (Usagi's mapping CSV: its APPROVED rows) or stcm (OMOP source_to_concept_map).",
)
@click.option(
    "--as",
    "as_",
    default="decisions",
    show_default=True,
    type=LazyChoice("harmonize.mapping.import_mappings", "IMPORT_AS"),
    help="decisions (stored, with reviewer, time and equivalence) or known (a known-pairs CSV "
    "for 'map --known', written to --output).",
)
@output_option("With --as known: the known-pairs CSV to write.", dir_okay=False)
@click.option("--reviewer", help="Who decided, where the file does not say.")
@pass_state
def import_cmd(
    state: State,
    source: str,
    target: str,
    file: Path,
    fmt: str,
    as_: str,
    output: Path | None,
    reviewer: str | None,
) -> None:
    """Import FILE's mappings of SOURCE onto TARGET, so that earlier work carries over to a
    new vocabulary version; rows whose codes a site lacks are left out and named.

    \b
    Examples:
      harmonize import --source local --target snomed2025 mappings_2024.usagi.csv --format usagi
      harmonize import --source local --target snomed2025 stcm.csv --format stcm --as known -o k.csv
    """
    from harmonize.mapping.import_mappings import import_mappings

    result = import_mappings(
        state.ws, source, target, file, fmt, as_=as_, output=output, reviewer=reviewer
    )
    click.echo(result.message)
