"""The heterogeneous two-site benchmark is built exactly as documented: which findings are
shared, renamed, merged, dropped and target-only, and the target's events re-derived from
the same network sample by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harmonize.core.workspace import Workspace
from harmonize.datasets import heterogeneous as het
from harmonize.datasets.demo import SOURCE_NETWORK, TARGET_NETWORK
from harmonize.datasets.networks import Network
from harmonize.transfer.encounters import load_encounters


def test_vocabularies_exactly():
    source, target, truth = het.vocabularies()
    assert source["code"].tolist() == [
        "C0231528", "C0018681", "C0242429", "C0085593", "C0013404", "C0043144",  # shared
        "C0521839", "C0006271", "C0231835",  # renamed at the target
        "C2077320", "C0277873", "C0425545", "C0035508",  # merged in pairs at the target
        "C0003862",  # dropped at the target
    ]  # fmt: skip
    assert source["description"].tolist()[:6] == [
        "myalgia", "headache", "sore throat", "chills", "dyspnea", "wheezing",
    ]  # fmt: skip
    assert list(target.itertuples(index=False, name=None)) == [
        ("C0231528", "myalgia"),
        ("C0018681", "headache"),
        ("C0242429", "sore throat"),
        ("C0085593", "chills"),
        ("C0013404", "dyspnea"),
        ("C0043144", "wheezing"),
        ("HX-101", "flu-like illness"),
        ("HX-102", "wheezy bronchiolitis"),
        ("HX-103", "rapid breathing"),
        ("HX-201", "retractions or nasal flaring"),
        ("HX-202", "crackles or rhonchi"),
        ("HX-301", "nauseated"),
        ("HX-302", "bluish skin or lips"),
        ("HX-303", "belly pain"),
    ]
    # 6 of the 14 findings are shared as they are (same code, same text) ...
    same = set(zip(source["code"], source["description"], strict=True)) & set(
        zip(target["code"], target["description"], strict=True)
    )
    assert len(same) == 6 and len(source) == len(target) == 14
    # ... and the truth maps the renamed and merged ones; target-only findings have none.
    assert sorted(truth[truth["target_code"].str.startswith("HX-")].itertuples(index=False)) == [
        ("HX-101", "C0521839", "exact"),
        ("HX-102", "C0006271", "exact"),
        ("HX-103", "C0231835", "exact"),
        ("HX-201", "C0277873", "broader"),
        ("HX-201", "C2077320", "broader"),
        ("HX-202", "C0035508", "broader"),
        ("HX-202", "C0425545", "broader"),
    ]
    assert not set(truth["target_code"]) & {"HX-301", "HX-302", "HX-303"}
    assert "C0003862" not in set(truth["source_code"])  # dropped: nothing maps onto it


def test_events_re_derived_from_the_network_samples():
    world = het.heterogeneous_world(n_source=300, n_target=400, random_state=5)
    rng = np.random.default_rng(5)  # the world's own draw order: source seed, then target seed
    source = Network.from_file(SOURCE_NETWORK).sample(300, int(rng.integers(2**31)))
    target = Network.from_file(TARGET_NETWORK).sample(400, int(rng.integers(2**31)))

    def wide(events: pd.DataFrame) -> pd.DataFrame:
        return events.pivot(index="subject_id", columns="code", values="value")

    got = wide(world.source_events)
    assert sorted(got.columns) == sorted(het.SOURCE_CODES)
    for code in het.SOURCE_CODES:
        assert got[code].tolist() == source[code].tolist()
    got = wide(world.target_events)
    present = {c: target[c] == "P" for c in target.columns}
    expected = {c: present[c] for c in het.SHARED}
    expected |= {"HX-101": present["C0521839"], "HX-102": present["C0006271"]}
    expected |= {"HX-103": present["C0231835"]}
    expected["HX-201"] = present["C2077320"] | present["C0277873"]
    expected["HX-202"] = present["C0425545"] | present["C0035508"]
    expected |= {"HX-301": present["C0027497"], "HX-302": present["C0010520"]}
    expected["HX-303"] = present["C0000737"]
    assert sorted(got.columns) == sorted(expected)
    for code, is_present in expected.items():
        assert (got[code] == "P").tolist() == is_present.tolist(), code
    assert "C0003862" not in got.columns
    assert world.target_labels["value"].tolist() == target["diagnosis"].tolist()
    assert (world.target_labels["split"] == "test").sum() == 200
    assert set(world.source_labels["split"]) == {"train"}


def test_sites_load_for_evaluation(tmp_path):
    world = het.heterogeneous_world(n_source=60, n_target=80, random_state=1)
    ws = Workspace(tmp_path / "ws")
    het.add_heterogeneous_sites(ws, world, tmp_path)
    gold = world.truth.rename(columns={"target_code": "source_code", "source_code": "target_code"})
    native = load_encounters(ws, "target")
    oracle = load_encounters(ws, "target", "oracle", via="source", gold=gold)
    assert len(native.y) == 80 and native.ids.shape[1] == 14
    # Read through the truth: the 3 target-only findings have no source concept and drop out.
    assert oracle.n_dropped_events == 3 * 80
    assert "Not flu-like illness" in native.texts and "Not influenza-like illness" in oracle.texts
