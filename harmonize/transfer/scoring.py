"""``--classifier auto``: every logistic family chosen by inner CV, the one-hot logistic local
baseline beside them, and each transfer row's difference from the best local row with a paired
bootstrap interval on the same test patients.

"Best local" is the local row (the baseline, ``local-cv`` or ``nb-local``) with the highest
test AUROC: the hardest comparison for transfer, so a positive difference is not an artefact of
picking a weak reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harmonize.transfer.auto import FAMILIES, LOCAL_FAMILIES, choose_and_fit, fit_source
from harmonize.transfer.baseline import OneHotLogistic
from harmonize.transfer.metrics import auroc, binary_metrics, paired_auroc_difference

if TYPE_CHECKING:
    from harmonize.transfer.experiment import EvalConfig, Patients

FAMILY_MODEL = {
    "nb-local": "nb",
    "nb-prior": "nb",
    "nb-eb": "nb",
    "stacked-nb": "nb",
    "ensemble": "mix",
}  # the model column; others are logreg


def _probability(scores: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -scores))


def auto_families(config: EvalConfig) -> tuple[str, ...]:
    """The families to choose among: the requested scenarios that are families, else all."""
    asked = tuple(s for s in config.scenarios if s in FAMILIES)
    return asked or FAMILIES


def train_auto(
    config: EvalConfig, vectors: np.ndarray, patients: Patients, sizes: tuple[int, ...], bar
) -> tuple[list[dict], pd.DataFrame]:
    """(rows, comparisons) for every seed and target size; see the module docstring."""
    from harmonize.transfer.experiment import stratified_sample

    src, pool, test = patients.source, patients.pool, patients.test
    families = auto_families(config)
    source = fit_source(vectors, src.ids, src.y, config.tie_used, patients.texts)
    rows: list[dict] = []
    comparisons: list[dict] = []
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        direct_p = _probability(source.model.decision(vectors, test.ids))
        if "direct" in families:
            rows.append(_row(config, test.y, direct_p, "logreg", "direct", 0, seed, "", np.nan))
        for size in sizes:
            rng = np.random.default_rng(seed * 1000 + size)
            sample = pool.subset(stratified_sample(pool.y, size, rng))
            baseline = OneHotLogistic(random_state=seed).fit(vectors, sample.ids, sample.y)
            scored = {("logreg", "local"): baseline.predict_proba(vectors, test.ids)[:, 1]}
            rows.append(
                _row(config, test.y, scored["logreg", "local"], "logreg", "local", size, seed)
            )
            choice = choose_and_fit(
                vectors,
                source,
                sample.ids,
                sample.y,
                test.ids,
                families,
                config.inner_folds,
                config.inner_repeats,
                random_state=seed,
            )
            names = [c.name for c in choice.selection.candidates]
            cv = dict(zip(names, choice.selection.cv_auroc, strict=True))
            if "ensemble" in choice.chosen:
                cv[choice.chosen["ensemble"].name] = choice.chosen["ensemble"].cv
            for family, candidate in choice.chosen.items():
                model = "auto" if family == "auto" else FAMILY_MODEL.get(family, "logreg")
                scenario = candidate.family if family == "auto" else family
                p = _probability(choice.test_scores[family])
                scored[model, scenario] = p
                if family != "direct":
                    rows.append(
                        _row(
                            config,
                            test.y,
                            p,
                            model,
                            scenario,
                            size,
                            seed,
                            candidate.setting,
                            cv[candidate.name],
                        )
                    )
            comparisons += _compare(config, test.y, scored, size, seed)
            bar.update(1)
    return rows, pd.DataFrame(comparisons)


def _row(config, y, p, model, scenario, size, seed, setting="", cv_auroc=np.nan) -> dict:
    metrics = binary_metrics(y, p, config.bootstrap, random_state=seed)
    return {
        "model": model,
        "scenario": scenario,
        "target_train_size": size,
        "seed": seed,
        **metrics,
        "setting": setting,
        "cv_auroc": cv_auroc,
    }


def _compare(config, y, scored: dict, size: int, seed: int) -> list[dict]:
    """Each transfer row minus the best local row, paired bootstrap on the test patients."""
    local = {k: p for k, p in scored.items() if k[0] != "auto" and k[1] in LOCAL_FAMILIES}
    best = max(local, key=lambda k: auroc(y, local[k]))
    out = []
    for key, p in scored.items():
        if key in local:
            continue
        diff = paired_auroc_difference(y, p, local[best], config.bootstrap, random_state=seed)
        out.append(
            {
                "model": key[0],
                "scenario": key[1],
                "target_train_size": size,
                "seed": seed,
                "versus": f"{best[0]} {best[1]}",
                **diff,
            }
        )
    return out
