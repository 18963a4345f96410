"""Commands that read the workspace: SQL, named queries and exports."""

from __future__ import annotations

from pathlib import Path

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import (
    format_option,
    output_option,
    renamed,
    source_option,
    target_option,
)
from harmonize.core.errors import QueryError


@cli.command("sql")
@click.argument("query")
@format_option()
@pass_state
def sql_cmd(state: State, query: str, fmt: str) -> None:
    """Run read-only SQL on the workspace (tables sites, concepts, events, candidates,
    mappings; view mapped_concepts).

    \b
    Example:
      harmonize sql "SELECT * FROM mapped_concepts WHERE source_site = 'siteB' LIMIT 5"
    """
    import duckdb

    from harmonize.core.render import render

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
@format_option()
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
    import duckdb
    import pandas as pd

    from harmonize.core import sql
    from harmonize.core.render import render

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
@source_option()
@target_option()
@format_option("mappings")
@output_option("The file to write.", required=True, dir_okay=False)
@pass_state
def export_cmd(state: State, source: str, target: str, fmt: str, output: Path) -> None:
    """Write the stored mappings of SOURCE onto TARGET for other tools.

    \b
    Example:
      harmonize export --source siteB --target siteA --format sssom -o b_to_a.sssom.tsv
    """
    from harmonize.mapping.export import export_mappings

    click.echo(export_mappings(state.ws, source, target, fmt, output).message)


@cli.command("export-events")
@renamed("--site", "source")
@renamed("--into", "target")
@source_option("Site whose events to export.")
@target_option("Site whose codes they are written in (through the mappings of SOURCE onto it).")
@format_option("events")
@output_option("A new folder (meds) or a .parquet file.", required=True)
@pass_state
def export_events_cmd(state: State, source: str, target: str, fmt: str, output: Path) -> None:
    """Write SOURCE's events recoded into TARGET's codes through the stored mappings.

    \b
    Example:
      harmonize export-events --source target --target source --format meds -o target_in_source/
    """
    from harmonize.mapping.export import export_events

    click.echo(export_events(state.ws, source, target, fmt, output).message)
