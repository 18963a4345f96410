"""Commands that read the workspace: SQL, named queries and exports."""

from __future__ import annotations

from pathlib import Path

import click
import duckdb
import pandas as pd

from harmonize.cli.base import State, cli, pass_state
from harmonize.core import sql
from harmonize.core.errors import QueryError
from harmonize.core.render import FORMATS, render
from harmonize.mapping.export import EXPORT_FORMATS


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
    from harmonize.mapping.export import export_mappings

    n = export_mappings(state.ws, source, target, fmt, output)
    click.echo(f"wrote {n} mappings of '{source}' onto '{target}' as {fmt} to {output}")


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
    from harmonize.mapping.export import export_events

    click.echo(export_events(state.ws, site, into, fmt, output))
