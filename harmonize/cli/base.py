"""The command group, its error handling and the state every command shares.

>>> from click.testing import CliRunner
>>> CliRunner().invoke(cli, ["--version"]).output.startswith("harmonize")
True
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harmonize import __version__
from harmonize.core.config import WORKSPACE_ENV
from harmonize.core.errors import HarmonizeError


class HarmonizeGroup(click.Group):
    """Turns every HarmonizeError and usage error into ``Error: ...`` with exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarmonizeError as exc:
            raise click.ClickException(exc.render(self._flags(ctx))) from exc

    def _flags(self, ctx: click.Context) -> dict[str, str]:
        """Python parameter name -> the running command's flag (``reranker_concepts`` ->
        ``--reranker-concepts``), so library errors speak in the flags the user typed."""
        name = ctx.invoked_subcommand
        command = self.get_command(ctx, name) if name else None
        flags = {"device": "--device", "workspace": "--workspace"}
        for param in getattr(command, "params", ()):
            if isinstance(param, click.Option) and param.name:
                long = [o for o in param.opts if o.startswith("--")]
                flags[param.name] = (long or param.opts)[0]
        return flags

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            _close_bars()
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


def _close_bars() -> None:
    """Closes open progress bars before an error; none can be open if timing (and tqdm with
    it) was never imported, and importing it just to find none would slow every error."""
    timing = sys.modules.get("harmonize.core.timing")
    if timing is not None:
        timing.close_bars()


class State:
    """The workspace and output settings every command gets (``pass_state``)."""

    def __init__(self, workspace: Path, quiet: bool, explicit: bool):
        from harmonize.core.workspace import Workspace  # DuckDB: not needed for --help

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
@click.option("--verbose", "-v", is_flag=True, help="Log each stage's wall time to stderr.")
@click.version_option(__version__, prog_name="harmonize")
@click.pass_context
def cli(ctx: click.Context, workspace: Path, quiet: bool, verbose: bool) -> None:
    """Map clinical concept codes between hospital sites with embeddings, FAISS and DuckDB.

    \b
    Example:
      harmonize add-site siteA --vocab a.csv
      harmonize add-site siteB --vocab b.csv
      harmonize build-index --site siteA && harmonize build-index --site siteB
      harmonize map --source siteB --target siteA --k 5
    """
    # Imported here, not at the top: --help and --version never run this.
    from harmonize.core import timing

    if quiet and verbose:
        raise HarmonizeError("--quiet and --verbose contradict each other: give one of them")
    # Progress bars show only on a terminal (stderr) and never with --quiet.
    timing.set_progress(not quiet)
    ctx.call_on_close(lambda: timing.set_progress(False))
    if verbose:
        ctx.with_resource(timing.log_stages(sys.stderr))
    source = ctx.get_parameter_source("workspace")
    explicit = source not in (click.core.ParameterSource.DEFAULT, None)
    ctx.obj = State(workspace, quiet, explicit)
