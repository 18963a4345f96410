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
from harmonize.core.config import VOCABULARY_COLUMNS


@cli.command("review")
@source_option()
@target_option()
@click.option(
    "--order",
    type=LazyChoice("harmonize.mapping.queue", "ORDERS"),
    default="informative",
    show_default=True,
    help="informative: what a decision would teach most (least confident first, weighted by "
    "how often the code occurs, every 4th concept picked from further down the order so that "
    "decisions also cover surer mappings); frequency: most frequent source codes first; "
    "confidence: least confident first; code: by source code.",
)
@click.option(
    "--candidates",
    "top",
    type=int,
    default=3,
    show_default=True,
    help="Top candidates to show per concept (0: the chosen mapping only).",
)
@limit_option("Concepts to show (0 for all).")
@format_option()
@pass_state
def review_cmd(
    state: State, source: str, target: str, order: str, top: int, limit: int, fmt: str
) -> None:
    """List the mappings most worth checking next: those nobody has decided on, with each
    one's top candidates (score, description, parent).

    \b
    Example:
      harmonize review --source siteB --target siteA --limit 10
      harmonize review --source siteB --target siteA --order frequency --candidates 5
    """
    from harmonize.core.render import render
    from harmonize.mapping.queue import coverage, review_queue

    queue = review_queue(state.ws, source, target, order=order, top=top)
    shown = _review_rows(queue, limit, long=fmt == "table")
    click.echo(render(shown, fmt), nl=False)
    if fmt == "table":
        click.echo(f"{len(queue)} mappings await review ({order} order)")
        click.echo(coverage(state.ws, source, target).message)


def _review_rows(queue, limit: int, long: bool):
    """The first ``limit`` concepts of ``queue`` as shown: ``long`` (on a terminal), one row per
    concept and candidate (rank, code, description, parent, score; the chosen one marked) with
    the concept's cells (order, code, description, occurrences, confidence, and what a
    vocabulary target adds) on its first row only; else one row per concept with its
    candidates in one column."""
    import pandas as pd

    from harmonize.core.render import shorten

    table = queue.to_frame()
    table = table if limit <= 0 else table.head(limit)
    vocabulary = [c for c in VOCABULARY_COLUMNS if c in table and table[c].notna().any()]
    table = table.assign(order=range(1, len(table) + 1))
    cands = queue.candidates
    if not long:
        listed = cands.groupby("source_code")[list(cands.columns)].apply(_candidate_text)
        table["candidates"] = table["source_code"].map(listed)
        return table.drop(columns=[c for c in VOCABULARY_COLUMNS if c not in vocabulary])
    own = ["order", "source_code", "source_description", "occurrences", "confidence", *vocabulary]
    concept = table[[*own, "target_code"]].rename(columns={"target_code": "chosen_code"})
    rows = concept.merge(cands, on="source_code", how="inner")
    # A chosen target outside the top candidates is shown too, without a rank.
    listed = set(zip(cands["source_code"], cands["target_code"], strict=True))
    missing = [
        (s, t) not in listed
        for s, t in zip(concept["source_code"], concept["chosen_code"], strict=True)
    ]
    chosen = table.assign(rank=pd.NA)[["source_code", "rank", "target_code", "target_description",
                                       "score"]]  # fmt: skip
    rows = pd.concat([rows, concept[missing].merge(chosen, on="source_code")], ignore_index=True)
    rows = rows.sort_values(["order", "rank"], na_position="last", kind="stable")
    rows["chosen"] = (rows["target_code"] == rows["chosen_code"]).map({True: "*", False: ""})
    rows = rows[[*own, "chosen", "rank", "target_code", "target_description", "target_parent",
                 "score"]].reset_index(drop=True)  # fmt: skip
    for column in ("source_description", "target_description"):
        rows[column] = rows[column].map(shorten)
    rows["occurrences"] = rows["occurrences"].map(lambda n: "-" if pd.isna(n) else f"{n:.0f}")
    rows["confidence"] = rows["confidence"].map(lambda p: "-" if pd.isna(p) else f"{p:.3f}")
    rows["rank"] = rows["rank"].map(lambda r: "-" if pd.isna(r) else f"{r:.0f}")
    repeat = rows["order"].duplicated().to_numpy()
    rows = rows.astype({"order": str, **{c: object for c in vocabulary}})
    rows.loc[repeat, own] = ""
    return rows


def _candidate_text(cands) -> str:
    """One concept's candidates in one cell: "rank. code description (score; parent)" each."""
    return " | ".join(
        f"{r.rank}. {r.target_code} {r.target_description} ({r.score:.3f}"
        + (f"; parent {r.target_parent})" if isinstance(r.target_parent, str) else ")")
        for r in cands.itertuples(index=False)
    )


@cli.command("coverage")
@source_option()
@target_option()
@format_option()
@pass_state
def coverage_cmd(state: State, source: str, target: str, fmt: str) -> None:
    """How much of SOURCE's data the review onto TARGET covers: per status (approved,
    rejected, undecided, unmapped) the concepts and the occurrences of their codes (events,
    else the vocabulary's frequency column), with their shares.

    \b
    Example:
      harmonize coverage --source siteB --target siteA
    """
    from harmonize.core.render import render
    from harmonize.mapping.queue import coverage

    result = coverage(state.ws, source, target)
    click.echo(render(result.to_frame(), fmt), nl=False)
    if fmt == "table":
        click.echo(result.message)


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
