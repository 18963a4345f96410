"""The learning curve of review: how fast ``map`` gets better as a person reviews its mappings.

A simulated reviewer (:class:`GoldReviewer`) answers from a gold standard, and reads it only
for the concepts it is asked about: it accepts a proposed mapping that the gold lists, sets the
gold's target where the proposal is wrong, and rejects a proposal for a concept the gold has
no target for. :func:`review_curve` starts from the zero-shot mapping (no known pairs, no
decisions), and after each batch of reviews (up to each of ``points``) re-maps the pair, which
learns from the decisions (:mod:`harmonize.mapping.learn`), and scores it: top-1 on the gold
concepts not reviewed yet (``top1_rest``) and on all gold concepts, reviewed ones included
(``top1_all``). Two arms: the concepts ``review`` puts first (its informative order), against
the same number of concepts drawn at random (seeded) from the same queue, ``random_seeds``
times over (each from no decisions; :meth:`ReviewCurve.table` gives their mean).

``top1_rest`` is measured on different concepts in the two arms: reviewing the hard concepts
first also leaves easier ones to score. ``top1_all`` compares the two arms on the same concepts.

>>> reviewer = GoldReviewer(pd.DataFrame({"source_code": ["a", "a"], "target_code": ["x", "y"]}))
>>> reviewer.answer("a", "y"), reviewer.answer("b", "x")
({'code': 'a', 'decision': 'accept'}, {'code': 'b', 'decision': 'reject'})
>>> reviewer.answer("a", "z")
{'code': 'a', 'decision': 'set', 'target_code': 'x'}
>>> reviewer.read
['a', 'b', 'a']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.config import RANDOM_STATE
from harmonize.core.errors import InputError
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.queue import review_queue
from harmonize.mapping.review import decide_many

ARMS = ("review", "random")
REVIEWER = "simulated-gold"


class GoldReviewer:
    """Answers from ``gold`` (source_code, target_code rows) one concept at a time, and
    records every concept whose answer it read (``read``)."""

    def __init__(self, gold: pd.DataFrame) -> None:
        self._targets = gold.groupby("source_code")["target_code"].apply(sorted).to_dict()
        self.read: list[str] = []

    def answer(self, code: str, proposed: str | None) -> dict[str, str]:
        """The decision on ``code``'s proposed target: accept a gold target, set the first gold
        target instead of a wrong one, reject where the gold has none."""
        self.read.append(code)
        right = self._targets.get(code, [])
        if proposed in right:
            return {"code": code, "decision": "accept"}
        if right:
            return {"code": code, "decision": "set", "target_code": right[0]}
        return {"code": code, "decision": "reject"}


@dataclass
class ReviewCurve(TableResult):
    """The curve: per arm and number reviewed, the top-1 on the gold concepts not reviewed
    (``top1_rest`` of ``n_rest``) and on all of them (``top1_all``), and the map's summary;
    ``reviewers`` are the arms' simulated reviewers (what each read)."""

    source: str
    target: str
    model: str
    rows: list[dict] = field(default_factory=list)
    reviewers: dict[str, GoldReviewer] = field(default_factory=dict)
    seconds: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        columns = ["arm", "seed", "reviewed", "n_rest", "top1_rest", "top1_all", "learned"]
        return pd.DataFrame(self.rows, columns=[*columns, "seconds"])

    def table(self) -> pd.DataFrame:
        """The two arms side by side: one row per number reviewed (the random arm's mean over
        its seeds); with several seeds, also the random arm's lowest and highest rest top-1
        (``top1_rest_random_min``, ``_max``), so that a difference between the arms can be
        read against how far one random draw lands from another."""
        frame = self.to_frame()
        wide = frame.pivot_table(
            index="reviewed", columns="arm", values=["top1_rest", "top1_all"], aggfunc="mean"
        )
        wide.columns = [f"{metric}_{arm}" for metric, arm in wide.columns]
        random = frame[frame["arm"] == "random"]
        if random["seed"].nunique() > 1:
            spread = random.groupby("reviewed")["top1_rest"].agg(["min", "max"])
            wide[["top1_rest_random_min", "top1_rest_random_max"]] = spread
        return wide.reset_index()


def parse_points(text: str) -> list[int]:
    """``"0,25,50"`` as [0, 25, 50]: increasing, from 0 or more.

    >>> parse_points("0, 25,50")
    [0, 25, 50]
    """
    try:
        points = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(
            f"{{review_curve}} is a list of review counts like 0,25,50, got {text!r}",
            params=("review_curve",),
        ) from None
    steps = zip(points[:-1], points[1:], strict=True)
    if not points or points[0] < 0 or any(b <= a for a, b in steps):
        raise InputError(
            f"{{review_curve}} must be increasing counts from 0 or more, got {text!r}",
            params=("review_curve",),
        )
    return points


def review_curve(
    ws: Workspace,
    source: str,
    target: str,
    gold: pd.DataFrame,
    points: Sequence[int],
    model: str = "minilm",
    k: int = 10,
    arms: Sequence[str] = ARMS,
    random_state: int = RANDOM_STATE,
    echo: Callable[[str], None] = lambda _: None,
    learn: bool = True,
    order: str = "informative",
    random_seeds: int = 1,
) -> ReviewCurve:
    """Simulates review of ``source`` onto ``target`` by a reviewer who answers from ``gold``
    (module docstring); each arm starts from no decisions (the pair's are deleted). Without
    ``learn`` the re-maps keep the decisions but learn nothing from them (``map --no-learn``):
    the baseline that shows what learning adds. The random arm runs ``random_seeds`` times,
    seeded ``random_state``, ``random_state + 1``, ...; ``reviewers`` keeps each arm's last."""
    if random_seeds < 1:
        raise InputError(f"{{random_seeds}} must be 1 or more, got {random_seeds}",
                         params=("random_seeds",))  # fmt: skip
    started = time.perf_counter()
    curve = ReviewCurve(source, target, model)
    right = gold.groupby("source_code")["target_code"].apply(set).to_dict()
    for arm in arms:
        if arm not in ARMS:
            raise InputError(f"unknown arm '{arm}': use {' or '.join(ARMS)}")
        for seed in range(random_state, random_state + (random_seeds if arm == "random" else 1)):
            reviewer = curve.reviewers[arm] = GoldReviewer(gold)
            rng = np.random.default_rng(seed)
            rows = simulate_arm(ws, source, target, arm, points, reviewer, right, rng, model, k,
                                learn, order, echo)  # fmt: skip
            curve.rows += [{**row, "seed": seed} for row in rows]
    curve.seconds = time.perf_counter() - started
    return curve


def simulate_arm(
    ws: Workspace, source: str, target: str, arm: str, points: Sequence[int],
    reviewer: GoldReviewer, right: dict[str, set[str]], rng: np.random.Generator, model: str,
    k: int, learn: bool, order: str, echo: Callable[[str], None],
) -> list[dict]:  # fmt: skip
    """One arm from no decisions: a batch of reviews up to each of ``points``, a re-map and
    its score after each."""
    with ws.transaction() as con:
        sql.run_internal(con, "delete_pair_decisions", source=source, target=target)
    reviewed: list[str] = []
    rows = []
    for point in points:
        clock = time.perf_counter()
        batch = next_batch(ws, source, target, arm, point - len(reviewed), rng, order)
        if batch:
            answers = [reviewer.answer(code, proposed) for code, proposed in batch]
            decide_many(ws, source, target, answers, reviewer=REVIEWER)
            reviewed += [code for code, _ in batch]
        mapped = map_sites(ws, source, target, model=model, k=k, learn=learn)
        row = score_mapping(mapped.mappings, right, set(reviewed))
        row.update(arm=arm, reviewed=len(reviewed), learned=mapped.learned.lstrip("; "),
                   seconds=round(time.perf_counter() - clock, 1))  # fmt: skip
        rows.append(row)
        echo(f"  {arm}: {len(reviewed)} reviewed, top-1 {row['top1_rest']:.3f} on the "
             f"{row['n_rest']} not reviewed, {row['top1_all']:.3f} on all")  # fmt: skip
    return rows


def next_batch(
    ws: Workspace, source: str, target: str, arm: str, n: int, rng: np.random.Generator,
    order: str = "informative",
) -> list[tuple[str, str]]:  # fmt: skip
    """The next ``n`` (code, proposed target) to review: the first of the review queue in
    ``order``, or a random draw from it."""
    if n <= 0:
        return []
    queue = review_queue(ws, source, target, order=order, top=0).to_frame()
    if arm == "random":
        queue = queue.sort_values("source_code", kind="stable")
        picked = rng.choice(len(queue), size=min(n, len(queue)), replace=False)
        queue = queue.iloc[np.sort(picked)]
    queue = queue.drop_duplicates("source_code").head(n)
    return list(zip(queue["source_code"], queue["target_code"], strict=True))


def score_mapping(
    mappings: pd.DataFrame, right: dict[str, set[str]], reviewed: set[str]
) -> dict[str, float | int]:
    """Top-1 of the stored ``mappings`` (source_code, target_code) against ``right`` on the
    gold concepts not ``reviewed`` and on all of them (no mapping counts as wrong).

    >>> maps = pd.DataFrame({"source_code": ["a", "b", "c"], "target_code": ["x", "y", "z"]})
    >>> score_mapping(maps, {"a": {"x"}, "b": {"x"}, "d": {"x"}}, {"a"})
    {'n_rest': 2, 'top1_rest': 0.0, 'top1_all': 0.3333333333333333}
    """
    chosen = mappings.groupby("source_code")["target_code"].apply(set).to_dict()
    hit = {code: bool(chosen.get(code, set()) & targets) for code, targets in right.items()}
    rest = [hit[c] for c in hit if c not in reviewed]
    return {
        "n_rest": len(rest),
        "top1_rest": float(np.mean(rest)) if rest else float("nan"),
        "top1_all": float(np.mean(list(hit.values()))),
    }


def demo_review_curve(
    ws: Workspace,
    points: Sequence[int],
    model: str = "minilm",
    k: int = 10,
    n_patients: int = 1000,
    random_state: int = RANDOM_STATE,
    echo: Callable[[str], None] = lambda _: None,
    progress: bool = False,
    **options,
) -> ReviewCurve:
    """The curve on the demo's two sites (with their sampled patients' events, which weight
    the review order), mapping target onto source against the demo's true mapping;
    ``options`` go to :func:`review_curve` (learn, random_seeds, order)."""
    from harmonize.datasets.demo import SOURCE_VOCAB, TARGET_TRUTH, TARGET_VOCAB, demo_world
    from harmonize.index.site_index import build_site_index
    from harmonize.sites.registry import add_site

    world = demo_world(n_patients, random_state)
    for site, vocab in (("source", SOURCE_VOCAB), ("target", TARGET_VOCAB)):
        echo(add_site(ws, site, vocab, replace=True, events=world[f"{site}_events"]).message)
        for part in model.split("+"):
            echo(build_site_index(ws, site, part, progress=progress).message)
    truth = pd.read_csv(TARGET_TRUTH, dtype=str)
    gold = pd.DataFrame({"source_code": truth["target_code"], "target_code": truth["source_code"]})
    return review_curve(ws, "target", "source", gold, points, model, k, random_state=random_state,
                        echo=echo, **options)  # fmt: skip


def icd_review_curve(
    ws: Workspace,
    points: Sequence[int],
    direction: str = "10to9",
    sample: int | None = 2000,
    model: str = "minilm",
    k: int = 10,
    random_state: int = RANDOM_STATE,
    echo: Callable[[str], None] = lambda _: None,
    progress: bool = False,
    **options,
) -> ReviewCurve:
    """The curve on ``sample`` held-out codes of ``bench-map icd`` (no known pairs: the
    source site holds only them), against their GEM pairs; ``options`` go to
    :func:`review_curve`."""
    from harmonize.benchmarks.map_quality import (
        DIRECTIONS,
        held_out_codes,
        write_bench_inputs,
    )
    from harmonize.datasets.icd import gem_gold, write_icd_inputs
    from harmonize.index.site_index import build_site_index
    from harmonize.sites.registry import add_site

    if direction not in DIRECTIONS:
        raise InputError(f"unknown direction '{direction}': use {' or '.join(DIRECTIONS)}")
    target = DIRECTIONS[direction][1]
    paths = write_icd_inputs(ws.root / "inputs")
    gold = gem_gold(direction)
    train, held_out = held_out_codes(gold, sample, random_state)
    files = write_bench_inputs(ws.root / "inputs", direction, gold, train, held_out, False)
    add_site(ws, target, paths[target], replace=True)
    add_site(ws, files.source_site, files.source_path, replace=True)
    for site in (target, files.source_site):
        for part in model.split("+"):
            echo(build_site_index(ws, site, part, progress=progress).message)
    return review_curve(ws, files.source_site, target, files.gold_test, points, model, k,
                        random_state=random_state, echo=echo, **options)  # fmt: skip
