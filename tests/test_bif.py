"""XMLBIF parsing and seeded forward sampling (harmonize/bif.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmonize.core.config import DATA_DIR
from harmonize.core.errors import InputError
from harmonize.datasets.networks import Network

SHARED = Path(__file__).resolve().parents[2] / "shared"
TARGET_CSV = (
    SHARED
    / "data/influenza-dtl/synthetic_data_v2/target_test"
    / "findings_final_0814_seed-1494714102_size10000.csv"
)

P_A = [0.3, 0.7]
P_B = [0.5, 0.3, 0.2]
# P(C = c0 | A, B) per parent configuration, first GIVEN (A) slowest: (a0,b0), (a0,b1), (a0,b2),
# (a1,b0), (a1,b1), (a1,b2). All distinct, so any other ordering would be detected.
P_C0 = [0.1, 0.2, 0.35, 0.6, 0.75, 0.9]


def variable(name, outcomes):
    states = "".join(f"<OUTCOME>{o}</OUTCOME>" for o in outcomes)
    return f'<VARIABLE TYPE="nature"><NAME>{name}</NAME>{states}</VARIABLE>'


def definition(name, table, given=()):
    parents = "".join(f"<GIVEN>{g}</GIVEN>" for g in given)
    values = " ".join(str(v) for v in table)
    return f"<DEFINITION><FOR>{name}</FOR>{parents}<TABLE>{values}</TABLE></DEFINITION>"


def bif(*parts):
    return (
        '<?xml version="1.0"?><BIF VERSION="0.3"><NETWORK><NAME>tiny</NAME>'
        + "".join(parts)
        + "</NETWORK></BIF>"
    )


def tiny_network_xml(c_table=None):
    """A -> C <- B, with C defined (and declared) before its parents."""
    c_rows = c_table or [v for p in P_C0 for v in (p, round(1 - p, 10))]
    return bif(
        variable("C", ["c0", "c1"]),
        variable("A", ["a0", "a1"]),
        variable("B", ["b0", "b1", "b2"]),
        definition("C", c_rows, given=("A", "B")),
        definition("A", P_A),
        definition("B", P_B),
    )


def test_parse_tiny_network_orders_parents_before_children():
    """Variables come out in topological order with their outcomes, parents and CPT shapes."""
    net = Network.from_xml(tiny_network_xml())
    names = [v.name for v in net.variables]
    assert names.index("C") > names.index("A")
    assert names.index("C") > names.index("B")
    c = net.by_name["C"]
    assert c.outcomes == ("c0", "c1")
    assert c.parents == ("A", "B")
    assert c.cpt.shape == (6, 2)
    np.testing.assert_allclose(c.cpt[:, 0], P_C0)
    assert net.name == "tiny"


def test_conditional_frequencies_match_cpt_first_parent_slowest():
    """200k samples: marginals of the roots and P(C | A, B) per configuration match within 0.01."""
    net = Network.from_xml(tiny_network_xml())
    s = net.sample(200_000, random_state=7)
    assert list(s.columns) == [v.name for v in net.variables]
    assert len(s) == 200_000
    a = s["A"].value_counts(normalize=True)
    b = s["B"].value_counts(normalize=True)
    assert a.reindex(["a0", "a1"]).to_numpy() == pytest.approx(P_A, abs=0.01)
    assert b.reindex(["b0", "b1", "b2"]).to_numpy() == pytest.approx(P_B, abs=0.01)
    for row, (a_val, b_val) in enumerate(itertools.product(["a0", "a1"], ["b0", "b1", "b2"])):
        sub = s[(s["A"] == a_val) & (s["B"] == b_val)]
        assert len(sub) > 5000
        assert (sub["C"] == "c0").mean() == pytest.approx(P_C0[row], abs=0.01), (a_val, b_val)


def test_deterministic_cpt_pins_parent_configuration_ordering_exactly():
    """With a one-hot CPT, C's outcome names its parent configuration: row i = i-th (A, B) pair
    with A varying slowest, for every sample."""
    configs = list(itertools.product(["a0", "a1"], ["b0", "b1", "b2"]))
    outcomes = [f"{a}{b}" for a, b in configs]
    table = np.eye(len(configs)).reshape(-1).tolist()
    xml = bif(
        variable("A", ["a0", "a1"]),
        variable("B", ["b0", "b1", "b2"]),
        variable("C", outcomes),
        definition("A", P_A),
        definition("B", P_B),
        definition("C", table, given=("A", "B")),
    )
    s = Network.from_xml(xml).sample(2000, random_state=1)
    assert (s["C"] == s["A"] + s["B"]).all()
    assert set(s["C"]) == set(outcomes)


def test_zero_probability_outcomes_are_never_drawn():
    """Outcomes with probability 0 never appear; a probability-1 outcome always does."""
    xml = bif(
        variable("A", ["x", "y", "z"]),
        variable("B", ["p", "q"]),
        definition("A", [0.0, 1.0, 0.0]),
        definition("B", [0.0, 1.0, 1.0, 0.0, 0.5, 0.5], given=("A",)),
    )
    s = Network.from_xml(xml).sample(5000, random_state=3)
    assert set(s["A"]) == {"y"}
    assert set(s["B"]) == {"p"}


def test_same_seed_same_samples_different_seed_differs():
    """Sampling is reproducible from the seed and changes with it."""
    net = Network.from_xml(tiny_network_xml())
    first = net.sample(500, random_state=42)
    pd.testing.assert_frame_equal(first, net.sample(500, random_state=42))
    assert not first.equals(net.sample(500, random_state=43))


def test_wrong_number_of_table_values():
    """A CPT with the wrong size names the variable and the expected shape."""
    bad = [v for p in P_C0[:-1] for v in (p, 1 - p)] + [0.5]  # 11 values instead of 12
    with pytest.raises(InputError) as exc:
        Network.from_xml(tiny_network_xml(c_table=bad))
    assert str(exc.value) == "<string>: table of 'C' has 11 values, expected 6 x 2"


def test_row_not_summing_to_one():
    """A CPT row whose probabilities do not sum to 1 is rejected."""
    xml = bif(variable("A", ["x", "y"]), definition("A", [0.5, 0.4]))
    with pytest.raises(InputError) as exc:
        Network.from_xml(xml)
    assert str(exc.value) == "<string>: a row of the table of 'A' does not sum to 1"


def test_undeclared_parent():
    """A GIVEN that names no VARIABLE is rejected with its name."""
    xml = bif(variable("A", ["x", "y"]), definition("A", [0.5, 0.5, 0.5, 0.5], given=("Z",)))
    with pytest.raises(InputError) as exc:
        Network.from_xml(xml)
    assert str(exc.value) == "<string>: definition uses undeclared variable 'Z'"


def test_variable_without_definition():
    """A declared variable with no DEFINITION is rejected."""
    xml = bif(variable("A", ["x", "y"]), variable("B", ["x", "y"]), definition("A", [0.5, 0.5]))
    with pytest.raises(InputError) as exc:
        Network.from_xml(xml)
    assert str(exc.value) == "<string>: no <DEFINITION> for B"


def test_malformed_xml_and_missing_network():
    """Unparseable XML and XML without <NETWORK> are InputErrors naming the source."""
    with pytest.raises(InputError, match=r"^net\.bif is not valid XMLBIF: "):
        Network.from_xml("<BIF><NETWORK>", source="net.bif")
    with pytest.raises(InputError) as exc:
        Network.from_xml("<BIF></BIF>", source="net.bif")
    assert str(exc.value) == "net.bif has no <NETWORK> element"


def test_cycle_is_rejected():
    """A -> B -> A cannot be sampled and is rejected."""
    xml = bif(
        variable("A", ["x", "y"]),
        variable("B", ["x", "y"]),
        definition("A", [0.5, 0.5, 0.5, 0.5], given=("B",)),
        definition("B", [0.5, 0.5, 0.5, 0.5], given=("A",)),
    )
    with pytest.raises(InputError, match=r"^the network has a cycle through '(A|B)'$"):
        Network.from_xml(xml)


def test_from_file_errors_name_the_file(tmp_path):
    """A missing file and a broken file are InputErrors that name the path."""
    missing = tmp_path / "missing.bif"
    with pytest.raises(InputError, match="^cannot read network "):
        Network.from_file(missing)
    broken = tmp_path / "broken.bif"
    broken.write_text("<BIF>", encoding="utf-8")
    with pytest.raises(InputError, match=f"^{broken} is not valid XMLBIF"):
        Network.from_file(broken)


@pytest.mark.parametrize(
    "part",
    [
        "<DEFINITION><FOR>A</FOR></DEFINITION>",  # no <TABLE>
        "<DEFINITION><TABLE>0.5 0.5</TABLE></DEFINITION>",  # no <FOR>
        "<DEFINITION><FOR>A</FOR><TABLE>0.5 x</TABLE></DEFINITION>",  # not a number
    ],
)
def test_incomplete_definition_is_an_input_error(part):
    """A DEFINITION lacking FOR/TABLE, or with a non-numeric TABLE, is a user error."""
    with pytest.raises(InputError):
        Network.from_xml(bif(variable("A", ["x", "y"]), part))


def test_negative_probability_is_rejected():
    """A row like 1.5 -0.5 sums to 1 but is not a distribution."""
    with pytest.raises(InputError):
        Network.from_xml(bif(variable("A", ["x", "y"]), definition("A", [1.5, -0.5])))


@pytest.mark.skipif(not TARGET_CSV.is_file(), reason="shared influenza-dtl data not present")
def test_vendored_target_network_matches_published_sample():
    """20000 samples of target.bif reproduce the marginals of the study's own 10000-patient
    sample drawn from the same network (diagnosis within 0.02, every variable within 0.03)."""
    net = Network.from_file(DATA_DIR / "networks" / "target.bif")
    published = pd.read_csv(TARGET_CSV, dtype=str, keep_default_na=False)
    assert set(published.columns) == set(net.by_name)
    for column in published.columns:
        assert set(published[column]) <= set(net.by_name[column].outcomes), column
    ours = net.sample(20_000, random_state=0)
    diag = ours["diagnosis"].value_counts(normalize=True)
    theirs = published["diagnosis"].value_counts(normalize=True)
    assert diag.sub(theirs, fill_value=0).abs().max() < 0.02
    for column in published.columns:
        ours_m = ours[column].value_counts(normalize=True)
        theirs_m = published[column].value_counts(normalize=True)
        assert ours_m.sub(theirs_m, fill_value=0).abs().max() < 0.03, column
