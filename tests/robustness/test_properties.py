"""Property tests: any valid vocabulary round-trips through add-site, map and export."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmonize.core.workspace import Workspace
from harmonize.index.site_index import build_site_index
from harmonize.mapping.export import export_mappings
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.registry import add_site

# Codes and descriptions as users write them: unicode, quotes, commas, semicolons, SQL.
TEXT = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
VOCAB = st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=12, unique_by=lambda r: r[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=VOCAB, b=VOCAB)
def test_random_vocabularies_round_trip(a, b):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = Workspace(root / "ws")
        for name, rows in (("a", a), ("b", b)):
            path = root / f"{name}.csv"
            pd.DataFrame(rows, columns=["code", "description"]).to_csv(path, index=False)
            add_site(ws, name, path)
            build_site_index(ws, name, "lexical")
        with ws.connect(read_only=True) as con:
            stored = con.execute(
                "SELECT code, description FROM concepts WHERE site = 'a' ORDER BY concept_id"
            ).fetchall()
        assert stored == list(a)
        result = map_sites(ws, "a", "b", model="lexical", k=1)
        assert result.n_mapped == len(a)
        out = root / "m.sssom.tsv"
        export_mappings(ws, "a", "b", "sssom", out)
        lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
        table = pd.read_csv(
            io.StringIO("\n".join(lines)), sep="\t", dtype=str, keep_default_na=False
        )
        assert sorted(table["subject_id"]) == sorted(f"a:{code}" for code, _ in a)
        assert set(table["object_id"]) <= {f"b:{code}" for code, _ in b}
