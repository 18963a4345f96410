"""Calibrated confidence: a known answer, out-of-fold scoring, and its use by map."""

from __future__ import annotations

import numpy as np
import pytest

from harmonize.core.errors import InputError
from harmonize.index.site_index import build_site_index
from harmonize.mapping.calibration import (
    calibrate,
    confidence,
    fit_isotonic,
    out_of_fold,
    reliability_table,
)
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.registry import add_site


def test_isotonic_recovers_a_known_probability():
    """Mappings right with probability equal to their score: the calibration learns the
    identity (within sampling error) and its Brier score approaches E[p(1-p)] = 1/6."""
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 20_000)
    correct = (rng.uniform(0, 1, 20_000) < scores).astype(float)
    cal = fit_isotonic(scores, correct)
    grid = np.array([0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(confidence(cal, grid), grid, atol=0.05)
    prob = out_of_fold(scores, correct)
    assert np.mean((prob - correct) ** 2) == pytest.approx(1 / 6, abs=0.01)
    table = reliability_table(prob, correct)
    assert table["n"].sum() == 20_000
    assert np.allclose(table["predicted"], table["observed"], atol=0.05)


def test_confidence_is_monotone_and_clipped():
    cal = fit_isotonic(np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1]))
    probs = confidence(cal, np.array([-1.0, 0.3, 0.5, 0.7, 2.0]))
    assert list(probs) == sorted(probs) and probs.min() >= 0 and probs.max() <= 1


def _world(workspace, tmp_path, fake_encoder, n=12):
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text("code,description\n" + "".join(f"A{i},word{i} shared\n" for i in range(n)))
    b.write_text("code,description\n" + "".join(f"B{i},shared word{i}\n" for i in range(n)))
    add_site(workspace, "a", a)
    add_site(workspace, "b", b)
    build_site_index(workspace, "a", "fake")
    build_site_index(workspace, "b", "fake")
    map_sites(workspace, "b", "a", model="fake", k=2)
    gold = tmp_path / "gold.csv"
    # Half the answers say the model is right, half say it is wrong.
    gold.write_text(
        "source_code,target_code\n"
        + "".join(f"B{i},{'A' + str(i) if i % 2 else 'A99'}\n" for i in range(n))
    )
    return gold


def test_map_stores_confidence_and_min_confidence_needs_a_calibration(
    workspace, tmp_path, fake_encoder
):
    gold = _world(workspace, tmp_path, fake_encoder)
    with pytest.raises(InputError) as err:
        map_sites(workspace, "b", "a", model="fake", min_confidence=0.5)
    assert "min_confidence needs a calibration of model fake" in str(err.value)
    assert err.value.render({"min_confidence": "--min-confidence"}).startswith(
        "--min-confidence needs a calibration of model fake"
    )
    result = calibrate(workspace, "b", "a", gold)
    assert result.model == "fake" and result.n == 12
    assert result.message.startswith("calibrated model fake on 12 labelled concepts: Brier ")
    assert result.to_frame()["n"].sum() == 12  # every concept falls in one reliability bin
    mapped = map_sites(workspace, "b", "a", model="fake", k=2)
    assert mapped.mappings["confidence"].between(0, 1).all()
    # Every best cosine is 1.0 and half of them are right: the calibrated chance is 0.5.
    assert np.allclose(mapped.mappings["confidence"], 0.5)
    assert map_sites(workspace, "b", "a", model="fake", min_confidence=0.6).n_mapped == 0
    assert map_sites(workspace, "b", "a", model="fake", min_confidence=0.5).n_mapped == 12
