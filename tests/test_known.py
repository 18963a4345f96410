"""Known pairs: hierarchy votes by hand, leave-one-out features, and map --known end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.sparse import csr_matrix

from harmonize.cli import cli
from harmonize.core.errors import InputError
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.rerank.candidates import (
    CANDIDATE_FEATURES,
    Pair,
    build_candidates,
    families,
    hierarchy_votes,
    lead_over_others,
    reverse_neighbours,
)
from harmonize.mapping.rerank.equivalence import EQUIVALENCE_FEATURES
from harmonize.mapping.rerank.known_pairs import read_known
from tests.helpers import N_FAMILIES, snapshot


def test_families_include_the_parent_concept_and_skip_missing_parents():
    codes = np.array(["A", "A1", "A2", "B1", "Z"], dtype=object)
    parents = np.array([None, "A", "A", "B", np.nan], dtype=object)
    fams = {p: f.tolist() for p, f in families(codes, parents).items()}
    assert fams == {"A": [0, 1, 2], "B": [3]}


def test_votes_are_a_softmax_of_neighbour_cosines_split_over_their_targets():
    """Query 0 has known siblings 1 (cosine 0.8, targets 10 and 11) and 2 (cosine 0.6, target
    12); sibling 3 is unknown and row 4 is in another family, so neither votes."""
    vectors = np.array(
        [[1, 0], [0.8, 0.6], [0.6, 0.8], [1, 0], [1, 0]],
        dtype=np.float64,
    )
    codes = np.array(["q", "s1", "s2", "s3", "x"], dtype=object)
    parents = np.array(["p", "p", "p", "p", "other"], dtype=object)
    known = {1: [10, 11], 2: [12], 4: [13]}
    (votes,) = hierarchy_votes(vectors, codes, parents, known, np.array([0]), tau=0.1)
    w1 = 1 / (1 + math.exp((0.6 - 0.8) / 0.1))  # softmax over cosines 0.8 and 0.6
    assert votes.votes == pytest.approx({10: w1 / 2, 11: w1 / 2, 12: 1 - w1})
    assert votes.n_voters == 2 and votes.best_cosine == pytest.approx(0.8)
    # A known query never votes for itself: sibling 1 sees only sibling 2.
    (own,) = hierarchy_votes(vectors, codes, parents, known, np.array([1]), tau=0.1)
    assert own.votes == pytest.approx({12: 1.0}) and own.n_voters == 1


def test_target_known_uses_counts_the_known_pairs_given():
    vectors = np.eye(3)
    codes = np.array(["a", "b", "c"], dtype=object)
    parents = np.array(["p", "p", "p"], dtype=object)
    known = {0: [1], 1: [1]}  # two known concepts use target 1
    lex = csr_matrix(np.eye(3))
    queries = np.array([2])
    votes = hierarchy_votes(vectors, codes, parents, known, queries)
    parents_t = np.array([None, None, None], dtype=object)
    texts = ["a", "b", "c"]
    pair = Pair(
        vectors,
        np.eye(3),
        lex,
        lex,
        texts,
        texts,
        parents_t,
        reverse_neighbours(vectors, np.eye(3), [1, 2]),
    )
    cands = build_candidates(queries, pair, np.array([[1, 2]]), votes, known)
    col = CANDIDATE_FEATURES.index("target_known_uses")
    assert cands.target.tolist() == [1, 2]
    assert cands.features[:, col].tolist() == pytest.approx([math.log1p(2), 0.0])
    assert cands.features[:, CANDIDATE_FEATURES.index("vote")].tolist() == [1.0, 0.0]


def test_cosine_lead_is_the_lead_over_the_best_other_candidate():
    # Query s0 = (1, 0) against t0 = (0.8, 0.6), t1 = (0.6, 0.8), t2 = (0, 1): cosines 0.8,
    # 0.6, 0; its first candidate leads by 0.2, the others trail the first by 0.2 and 0.8.
    # Query s1 = (0, 1) has one candidate (t2): no other to lead, so 0.
    source = np.array([[1.0, 0.0], [0.0, 1.0]])
    target = np.array([[0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    codes = np.array(["s0", "s1"], dtype=object)
    lex = csr_matrix(np.eye(2)), csr_matrix(np.zeros((3, 2)))
    no_parents = np.array([None, None], dtype=object)
    votes = hierarchy_votes(source, codes, no_parents, {}, np.array([0, 1]))
    pair = Pair(
        source, target, *lex, ["s0", "s1"], ["t0", "t1", "t2"],
        np.array([None] * 3, dtype=object), reverse_neighbours(source, target, [0, 1, 2]),
    )  # fmt: skip
    cands = build_candidates(np.array([0, 1]), pair, np.array([[0, 1, 2], [2, -1, -1]]), votes, {})
    lead = cands.features[:, CANDIDATE_FEATURES.index("cosine_lead")]
    assert list(zip(cands.query.tolist(), cands.target.tolist(), strict=True)) == [
        (0, 0), (0, 1), (0, 2), (1, 2)
    ]  # fmt: skip
    assert lead.tolist() == pytest.approx([0.2, -0.2, -0.8, 0.0])


def test_lead_over_others_against_a_loop_over_each_query():
    """Random queries of 1-5 candidates, cosines on a coarse grid so that ties at the top and
    below it occur, rows shuffled across queries: each row's lead equals its cosine minus the
    best of the other rows of its query (0 for a lone candidate), computed one row at a time."""
    rng = np.random.default_rng(3)
    pos = rng.permutation(np.repeat(np.arange(200), rng.integers(1, 6, 200)))
    frame = pd.DataFrame({"pos": pos, "cosine": rng.integers(0, 6, len(pos)) / 5})
    frame.index = rng.permutation(len(frame)) + 1000  # not a range index
    best = frame.groupby("pos")["cosine"].transform("max")
    want = []
    for row, (query, cosine) in enumerate(zip(frame["pos"], frame["cosine"], strict=True)):
        others = [c for r, (q, c) in enumerate(zip(frame["pos"], frame["cosine"], strict=True))
                  if q == query and r != row]  # fmt: skip
        want.append(cosine - max(others) if others else 0.0)
    got = lead_over_others(frame, best)
    assert got.tolist() == pytest.approx(want)
    single = frame.astype({"cosine": np.float32})  # the search's cosines are float32
    lead32 = lead_over_others(single, single.groupby("pos")["cosine"].transform("max"))
    assert lead32.dtype == np.float32 and lead32.tolist() == pytest.approx(want, abs=1e-6)
    # The draw holds what the loop's definition turns on: lone candidates and tied tops.
    sizes = frame.groupby("pos").size()
    n_top = frame[frame["cosine"] == best].groupby("pos").size()
    assert (sizes == 1).sum() > 10 and (n_top[sizes > 1] > 1).sum() > 10


def test_reverse_features_worked_by_hand():
    # Sources s0 = (1, 0), s1 = (0.6, 0.8); targets t0 = (0.8, 0.6), t1 = (0, 1).
    # Cosines: s0.t0 = 0.8, s1.t0 = 0.96, s0.t1 = 0, s1.t1 = 0.8.
    source = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    target = np.array([[0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    reverse = reverse_neighbours(source, target, [1, 0, 1], depth=1)
    assert reverse.rows.tolist() == [0, 1] and reverse.ids.tolist() == [[1], [1]]
    src, tgt = np.array([0, 1, 0]), np.array([0, 0, 1])
    rank, gap, hub = reverse.features(src, tgt, np.array([0.8, 0.96, 0.0]))
    # s0 is not t0's nearest source (s1 is): rank = depth, 0.16 below s1; s1 is t0's nearest.
    assert rank.tolist() == [1.0, 0.0, 1.0]
    assert gap.tolist() == pytest.approx([0.16, 0.0, 0.8], abs=1e-6)
    assert hub.tolist() == pytest.approx([0.96, 0.96, 0.8], abs=1e-6)
    with pytest.raises(AssertionError, match="missing"):
        reverse_neighbours(source, target, [0], depth=1).features(src, tgt, np.zeros(3))


def _hits(mappings: pd.DataFrame, truth_path) -> int:
    truth = dict(pd.read_csv(truth_path).itertuples(index=False))
    chosen = dict(zip(mappings["source_code"], mappings["target_code"], strict=True))
    return sum(chosen.get(s) == t for s, t in truth.items())


def test_known_pairs_fix_what_retrieval_gets_wrong(known_ws):
    ws, paths = known_ws
    plain = map_sites(ws, "local", "standard", model="lexical", k=3)
    assert _hits(plain.mappings, paths["truth"]) == 0  # every held-out child takes its decoy
    result = map_sites(ws, "local", "standard", model="lexical", k=3, known=paths["known"])
    assert _hits(result.mappings, paths["truth"]) == N_FAMILIES
    assert result.n_known == 4 * N_FAMILIES
    m = result.mappings.set_index("source_code")
    # Known concepts keep their known target, with confidence 1. The rest get the calibrated
    # probability: every cross-fitted top candidate here was right, so it is 1 as well.
    assert (m.loc["c0_3", "target_code"], m.loc["c0_3", "confidence"]) == ("T0", 1.0)
    unknown = m.loc[[f"c{f}_4" for f in range(N_FAMILIES)], "confidence"]
    assert (unknown == 1.0).all()
    with ws.connect(read_only=True) as con:
        methods = con.sql("SELECT DISTINCT method FROM mappings").fetchall()
        ranks = con.sql(
            "SELECT rank, target_code FROM candidates WHERE source_code = 'c0_4' ORDER BY rank"
        ).fetchall()
    assert methods == [("lexical:best+known",)]
    assert ranks[0] == (1, "T0") and [r for r, _ in ranks] == list(range(1, len(ranks) + 1))
    assert "80 concepts kept their known targets" in result.summary


def test_read_known_ignores_codes_outside_theknown_vocab_files(tmp_path):
    path = tmp_path / "k.csv"
    pd.DataFrame(
        {"source_code": ["a", "a", "b", "zz", "a"], "target_code": ["x", "y", "x", "x", "x"]}
    ).to_csv(path, index=False)
    codes = np.array(["a", "b"], dtype=object)
    assert read_known(path, codes, np.array(["x", "y"], dtype=object)) == {0: [0, 1], 1: [0]}


def test_known_errors_change_nothing(known_ws, tmp_path):
    ws, paths = known_ws
    few = tmp_path / "few.csv"
    pd.read_csv(paths["known"]).head(3).to_csv(few, index=False)
    before = snapshot(ws)
    with pytest.raises(InputError, match="only 3 source concepts of the file are in the source"):
        map_sites(ws, "local", "standard", model="lexical", known=few)
    runner = CliRunner()
    args = ["--workspace", str(ws.root), "map", "--source", "local", "--target", "standard"]
    out = runner.invoke(
        cli, [*args, "--model", "lexical", "--known", str(paths["known"]), "--strategy", "mutual"]
    )
    assert out.exit_code == 1
    assert out.output == (
        "Error: --known reranks each concept's candidates: use --strategy best, not mutual\n"
    )
    no_known = runner.invoke(cli, [*args, "--model", "lexical", "--reranker-concepts", "50"])
    assert (no_known.exit_code, no_known.output) == (
        1,
        "Error: --reranker-concepts sets how the --known reranker learns: add --known FILE\n",
    )
    known = ["--model", "lexical", "--known", str(paths["known"])]
    too_few = runner.invoke(cli, [*args, *known, "--reranker-concepts", "9"])
    assert (too_few.exit_code, too_few.output) == (
        1,
        "Error: --reranker-concepts must be at least 10, got 9\n",
    )
    assert snapshot(ws) == before


def test_reranker_concepts_caps_the_training_sample(known_ws, monkeypatch):
    import harmonize.mapping.rerank.pipeline as known_module

    ws, paths = known_ws
    seen = []
    real = known_module.training_queries
    monkeypatch.setattr(
        known_module, "training_queries", lambda k, limit: seen.append((k, limit)) or real(k, limit)
    )
    result = map_sites(
        ws, "local", "standard", model="lexical", k=3, known=paths["known"], reranker_concepts=40
    )
    # 40 of the 80 known concepts: the first 40 of the seeded permutation of all of them.
    (known, limit), *_ = seen
    assert len(known) == 80 and limit == 40
    assert real(known, 40).tolist() == real(known, 80)[:40].tolist()
    assert _hits(result.mappings, paths["truth"]) == N_FAMILIES


def _spy_on_the_reranker(monkeypatch) -> dict[str, list]:
    """Records the calls of the reranker's stages on harmonize.mapping.rerank.pipeline: the
    cross-fitted scores' labels and masks, the equivalence columns' exact pairs, the fitted
    feature widths and kinds, and the training order."""
    import harmonize.mapping.rerank.pipeline as known_module

    seen: dict[str, list] = {"calls": [], "columns": [], "widths": [], "order": [], "kinds": []}
    real_scores = known_module.cross_fitted_scores
    real_columns = known_module.equivalence_columns
    real_fit = known_module.fit_reranker
    real_train = known_module.training_queries

    def scores_spy(matrices, labels, apply_to, fit_rows=None):
        seen["calls"].append(([lab.copy() for lab in labels], fit_rows))
        return real_scores(matrices, labels, apply_to, fit_rows=fit_rows)

    def columns_spy(query, target, scores, exact_known, n_targets):
        seen["columns"].append(set(exact_known))
        return real_columns(query, target, scores, exact_known, n_targets)

    def fit_spy(parts, labels, kind, *prior):
        seen["widths"].extend(c.features.shape[1] for c in parts)
        seen["kinds"].append(kind)
        return real_fit(parts, labels, kind, *prior)

    def train_spy(known, limit):
        seen["order"].append(real_train(known, limit))
        return seen["order"][-1]

    monkeypatch.setattr(known_module, "cross_fitted_scores", scores_spy)
    monkeypatch.setattr(known_module, "equivalence_columns", columns_spy)
    monkeypatch.setattr(known_module, "fit_reranker", fit_spy)
    monkeypatch.setattr(known_module, "training_queries", train_spy)
    return seen


def test_equivalence_model_learns_from_the_pairs_asserted_exact(known_ws, tmp_path, monkeypatch):
    """The word-difference model learns from every known pair. The equivalence model, on the
    same rows, learns only from concepts whose pairs assert a predicate, with only the exact
    pairs right; each fold's exact-uses count leaves out the fold's own exact pairs."""
    ws, paths = known_ws
    pairs = pd.read_csv(paths["known"])
    said = {0: "exact", 1: "close"}  # children 2 and 3 assert nothing
    pairs["predicate"] = [said.get(int(c.split("_")[1]), "") for c in pairs["source_code"]]
    asserted = tmp_path / "asserted.csv"
    pairs.to_csv(asserted, index=False)
    seen = _spy_on_the_reranker(monkeypatch)
    calls, columns, widths, order = seen["calls"], seen["columns"], seen["widths"], seen["order"]
    plain = map_sites(ws, "local", "standard", model="lexical", k=3, known=paths["known"])
    assert len(calls) == 1 and not columns  # no predicates: no equivalence model
    # CANDIDATE_FEATURES and the word-difference score
    assert set(widths) == {len(CANDIDATE_FEATURES) + 1}
    assert "equivalence" not in plain.summary
    assert set(seen["kinds"]) == {"classifier"}  # 80 known: fewer than KNOWN_RANKER_MIN
    calls.clear()
    widths.clear()
    order.clear()
    result = map_sites(ws, "local", "standard", model="lexical", k=3, known=asserted)
    (words, no_mask), (equivalence, fit_rows) = calls
    assert no_mask is None and len(words) == len(equivalence) == len(fit_rows) == 5  # folds
    assert set(widths) == {len(CANDIDATE_FEATURES) + 1 + len(EQUIVALENCE_FEATURES)}
    # Sites list codes in file order: row = 5 * family + child.
    child = {row: row % 5 for row in range(5 * N_FAMILIES)}
    folds = np.array_split(order[0], 5)
    for fold, lab, eq, rows in zip(folds, words, equivalence, fit_rows, strict=True):
        assert not (eq & ~lab).any()  # an exact label is always a right one
        assert eq.sum() == sum(child[int(q)] == 0 for q in fold)  # one right target each
        assert rows.sum() > 0 and not rows.all()  # children 2 and 3 are no examples
    n_exact = N_FAMILIES  # child 0 of each family
    exact_rows = {5 * f for f in range(N_FAMILIES)}
    assert columns[:5] == [exact_rows - set(f.tolist()) for f in folds]
    assert columns[5] == exact_rows  # the unknown concepts may use every exact pair
    assert f"an equivalence model learned from {n_exact} pairs marked exact" in result.summary
    assert _hits(result.mappings, paths["truth"]) == N_FAMILIES
    # The assertions reach the store as the known concepts' predicates.
    m = result.mappings.set_index("source_code")
    assert m.loc["c0_0", "predicate"] == "skos:exactMatch"
    assert m.loc["c0_1", "predicate"] == "skos:closeMatch" and pd.isna(m.loc["c0_2", "predicate"])


def test_too_few_exact_pairs_are_said_and_change_nothing(known_ws, tmp_path):
    ws, paths = known_ws
    pairs = pd.read_csv(paths["known"])
    pairs["predicate"] = [
        "exact" if c in ("c0_0", "c1_0", "c2_0") else "" for c in pairs["source_code"]
    ]
    few = tmp_path / "few.csv"
    pairs.to_csv(few, index=False)
    plain = map_sites(ws, "local", "standard", model="lexical", k=3, known=paths["known"])
    result = map_sites(ws, "local", "standard", model="lexical", k=3, known=few)
    assert "3 pairs marked exact are too few for the equivalence model (it needs 10" in (
        result.summary
    )
    columns = ["source_code", "target_code", "confidence"]
    assert result.mappings[columns].equals(plain.mappings[columns])


def test_ranker_groups_each_parts_rows_by_query():
    """fit_reranker's groups are the runs of each part's query ids: the same model as LightGBM
    fitted by hand with those groups, and rows out of query order are refused."""
    import lightgbm

    from harmonize.mapping.rerank.candidates import Candidates
    from harmonize.mapping.rerank.model import fit_reranker

    rng = np.random.default_rng(0)
    parts, labels = [], []
    for sizes in ([3, 5, 4] * 10, [6, 2] * 12):  # queries 0..n-1 with these many candidates
        query = np.repeat(np.arange(len(sizes)), sizes)
        features = rng.random((len(query), 4))
        parts.append(Candidates(query, np.arange(len(query)), features))
        labels.append(features[:, 0] + 0.3 * rng.random(len(query)) > 0.9)
    model = fit_reranker(parts, labels, "ranker")
    by_hand = lightgbm.LGBMRanker(
        objective="lambdarank", n_estimators=300, learning_rate=0.05, num_leaves=31,
        random_state=0, n_jobs=1, verbose=-1,
    ).fit(
        np.vstack([p.features for p in parts]),
        np.concatenate(labels).astype(int),
        group=[3, 5, 4] * 10 + [6, 2] * 12,
    )  # fmt: skip
    probe = rng.random((50, 4))
    np.testing.assert_allclose(model.predict(probe), by_hand.predict(probe))
    # A fit with the groups wrong gives another model (so the check above can fail).
    wrong = lightgbm.LGBMRanker(
        objective="lambdarank", n_estimators=300, random_state=0, n_jobs=1, verbose=-1
    ).fit(np.vstack([p.features for p in parts]), np.concatenate(labels).astype(int),
          group=[12] * 10 + [8] * 12)  # fmt: skip
    assert not np.allclose(model.predict(probe), wrong.predict(probe))
    shuffled = Candidates(parts[0].query[::-1], parts[0].target, parts[0].features)
    with pytest.raises(AssertionError, match="not grouped by query"):
        fit_reranker([shuffled], [labels[0]], "ranker")
    with pytest.raises(ValueError, match="unknown reranker kind 'rankr'"):
        fit_reranker(parts, labels, "rankr")


def test_a_first_candidate_prior_moves_only_the_first_candidates_log_odds():
    """With ``first_prior`` the classifier is the one fitted without it, the search's first
    candidates' log-odds moved by logit(prior) - logit(their share right in the answered
    training queries), worked out here by hand."""
    from harmonize.mapping.rerank.candidates import Candidates
    from harmonize.mapping.rerank.model import fit_reranker

    rng = np.random.default_rng(1)
    n_queries, width = 60, 4
    query = np.repeat(np.arange(n_queries), width)
    features = rng.random((len(query), len(CANDIDATE_FEATURES)))
    rank_col = CANDIDATE_FEATURES.index("dense_rank")
    features[:, rank_col] = np.tile(np.arange(width), n_queries)
    right_place = rng.integers(0, width + 1, n_queries)  # width: no right candidate
    labels = features[:, rank_col] == right_place[query]
    cands = [Candidates(query, np.arange(len(query)), features)]
    plain = fit_reranker(cands, [labels], "classifier")
    shifted = fit_reranker(cands, [labels], "classifier", first_prior=0.9)
    answered = right_place < width
    share = float(np.mean(right_place[answered] == 0))
    assert 0.1 < share < 0.5
    shift = np.log(0.9 / 0.1) - np.log(share / (1 - share))

    def logit(p):
        return np.log(p / (1 - p))

    first = features[:, rank_col] == 0
    moved = logit(shifted.predict(features)) - logit(plain.predict(features))
    np.testing.assert_allclose(moved[first], shift, rtol=1e-6)
    np.testing.assert_allclose(moved[~first], 0.0, atol=1e-9)


def test_the_reranker_kind_follows_the_number_of_training_concepts(known_ws, monkeypatch):
    """80 known concepts train the per-row classifier, whose probabilities are those of the
    gradient-boosted classifier fitted by hand; with the threshold lowered, the ranker runs
    end to end and gets every held-out child right too."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    import harmonize.mapping.rerank.model as model_module
    import harmonize.mapping.rerank.pipeline as known_module
    from harmonize.mapping.rerank.candidates import Candidates
    from harmonize.mapping.rerank.model import fit_reranker

    rng = np.random.default_rng(0)
    query = np.repeat(np.arange(40), 5)
    features = rng.random((200, 3))
    labels = features[:, 0] > 0.7
    model = fit_reranker([Candidates(query, np.arange(200), features)], [labels], "classifier")
    # Only the queries with a right candidate are learned from (as LambdaRank does).
    answered = np.isin(query, np.unique(query[labels]))
    assert 0 < answered.sum() < len(query)  # some queries have no right candidate
    by_hand = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    by_hand.fit(features[answered], labels[answered])
    np.testing.assert_allclose(model.predict(features), by_hand.predict_proba(features)[:, 1])
    # A fit on every row gives another model (so the check above can fail).
    every_row = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    every_row.fit(features, labels)
    assert not np.allclose(model.predict(features), every_row.predict_proba(features)[:, 1])

    ws, paths = known_ws
    kinds = []
    real_fit = known_module.fit_reranker

    def fit_spy(parts, labels, kind, *prior):
        kinds.append(kind)
        return real_fit(parts, labels, kind, *prior)

    monkeypatch.setattr(known_module, "fit_reranker", fit_spy)
    # 70: the 80 training concepts reach it, each calibration fold's 64 do not, so a kind
    # chosen per fit would give five classifiers.
    monkeypatch.setattr(model_module, "KNOWN_RANKER_MIN", 70)  # read by reranker_kind
    result = map_sites(ws, "local", "standard", model="lexical", k=3, known=paths["known"])
    assert kinds == ["ranker"] * 6  # the model and the calibration's five fold models
    assert _hits(result.mappings, paths["truth"]) == N_FAMILIES
    confidence = result.mappings["confidence"]
    assert ((confidence >= 0) & (confidence <= 1)).all()
