"""Commands that review stored mappings: the queue, and accept / reject / set decisions."""

from __future__ import annotations

from collections.abc import Callable

import click

from harmonize.cli.base import State, cli, pass_state
from harmonize.cli.options import (
    LazyChoice,
    format_option,
    limit_option,
    source_option,
    target_option,
)

VOCABULARY_COLUMNS = (
    "matched_text",
    "via_code",
    "target_concept_code",
    "target_vocabulary",
    "target_domain",
    "target_class",
)


@cli.command("review")
@source_option()
@target_option()
@limit_option("Rows to show (0 for all).")
@format_option()
@pass_state
def review_cmd(state: State, source: str, target: str, limit: int, fmt: str) -> None:
    """List the mappings most worth checking: undecided ones, least confident first.

    \b
    Example:
      harmonize review --source siteB --target siteA --limit 10
    """
    from harmonize.core.render import render
    from harmonize.mapping.review import review_queue

    queue = review_queue(state.ws, source, target).to_frame()
    # the vocabulary columns only where the target is a vocabulary or a synonym matched
    vocabulary = [c for c in VOCABULARY_COLUMNS if c in queue.columns]
    queue = queue.drop(columns=[c for c in vocabulary if queue[c].isna().all()])
    shown = queue if limit <= 0 else queue.head(limit)
    click.echo(render(shown, fmt), nl=False)
    if fmt == "table":
        click.echo(f"{len(queue)} mappings await review")


predicate_option = click.option(
    "--predicate",
    type=LazyChoice("harmonize.mapping.predicates", "PREDICATES", case_sensitive=False),
    default=None,
    help="How the target relates: exact, close, broad (target is broader), narrow "
    "(target is narrower) or related; stored and exported (SSSOM, FHIR, Usagi).",
)


def _decision_command(decision: str, takes_target: bool) -> Callable[..., None]:
    """accept / reject / set share their options; only set takes a TARGET_CODE."""

    def command(
        state: State,
        source: str,
        target: str,
        reviewer: str | None,
        note: str | None,
        code: str,
        target_code: str | None = None,
        predicate: str | None = None,
    ) -> None:
        from harmonize.mapping.review import decide

        message = decide(
            state.ws,
            source,
            target,
            code,
            decision,
            target_code=target_code,
            reviewer=reviewer,
            note=note,
            predicate=predicate,
        )
        click.echo(message.message)

    # Decorators attach parameters last-first, so the later positional argument goes first.
    command = pass_state(command)
    if takes_target:
        command = click.argument("target_code")(command)
    command = click.argument("code")(command)
    if decision != "reject":
        command = predicate_option(command)
    command = click.option("--note", help="Why, for the record.")(command)
    command = click.option(
        "--reviewer", help="Who decides (default: $HARMONIZE_REVIEWER or login name)."
    )(command)
    command = target_option()(command)
    return source_option()(command)


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
    "Example: harmonize set --source siteB --target siteA ENT_010 C0027424 --predicate broad",
)(_decision_command("set", True))
