"""Hostile input through the real CLI: every bad site name, file, index or meta.json gets its
exact ``Error: ...`` on stderr, exit code 1, and leaves the workspace and the folder around it
byte-identical; hostile but valid codes and descriptions round-trip exactly."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from harmonize.cli import cli
from harmonize.core.workspace import Workspace

# Not imported from tests.conftest: importing it a second time would register a second fake
# encoder under the name "fake" and leave the fake_encoder fixture of other tests counting
# the calls of the first one.
SITE_A = (
    "code,description\nA1,acute dyspnea\nA2,reported fever\nA3,dry cough\nA4,sore throat\n"
    "A5,muscle pain\n"
)
SITE_B = "code,description\nB1,fever reported\nB2,cough dry\nB3,dyspnea acute\nB4,throat sore\n"
EVENTS_B = "subject_id,code,time\np1,B1,2024-01-03\np1,B2,2024-01-03\np2,B3,2024-01-04\n"
NAME_RULE = "use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and every folder under ``folder``. Unlike
    ``tests.helpers.snapshot`` it sees folders too, so an empty folder made outside the
    workspace (say by a site named ``../x``) counts as a change."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def invoke(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(ws.root), *args])


def ok(ws: Workspace, *args: str) -> Result:
    result = invoke(ws, *args)
    assert result.exit_code == 0, result.output
    return result


def refused(ws: Workspace, args: list[str], message: str, around: Path) -> None:
    """The command fails with exactly ``Error: message``, exit 1, no traceback, and nothing
    under ``around`` (the workspace, the input files, any sibling) changes."""
    before = tree(around)
    result = invoke(ws, *args)
    assert result.stderr == f"Error: {message}\n"
    assert (result.exit_code, result.stdout) == (1, "")
    assert isinstance(result.exception, SystemExit)
    assert tree(around) == before


MAPPING_SQL = (
    "SELECT source_code, target_code, round(score, 6) AS score FROM mappings "
    "WHERE source_site = 'b' ORDER BY source_code"
)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Sites a and b (b with events), fake indexes for both and a lexical one for a, b mapped
    onto a, one person's decision and a map after it. Built once; each test works on a copy."""
    root = tmp_path_factory.mktemp("base")
    inputs = root / "in"
    inputs.mkdir()
    (inputs / "a.csv").write_text(SITE_A)
    (inputs / "b.csv").write_text(SITE_B)
    (inputs / "b_events.csv").write_text(EVENTS_B)
    ws = Workspace(root / "ws")
    ok(ws, "add-site", "a", "--vocab", str(inputs / "a.csv"))
    ok(
        ws,
        "add-site",
        "b",
        "--vocab",
        str(inputs / "b.csv"),
        "--events",
        str(inputs / "b_events.csv"),
    )
    for site, model in (("a", "fake"), ("b", "fake"), ("a", "lexical")):
        ok(ws, "build-index", "--site", site, "--model", model)
    ok(ws, "map", "--source", "b", "--target", "a", "--model", "fake", "--k", "3")
    ok(ws, "reject", "--source", "b", "--target", "a", "B4", "--reviewer", "test")
    # Mapped again after the decision, so that the stored mapping is what a map gives (B4 on
    # its next candidate).
    ok(ws, "map", "--source", "b", "--target", "a", "--model", "fake", "--k", "3")
    return root


@pytest.fixture
def ws(base: Path, tmp_path: Path) -> Workspace:
    """A copy of the base workspace in ``tmp_path/ws``, its inputs in ``tmp_path/in``."""
    shutil.copytree(base / "ws", tmp_path / "ws")
    shutil.copytree(base / "in", tmp_path / "in")
    return Workspace(tmp_path / "ws")


# --- hostile site names ------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../x",
    "..",
    ".",
    "a/b",
    "a\\b",
    "/tmp/harmonize-abs",
    "~",
    ".hidden",
    "-x",
    "",
    "a b",
    "x" * 65,
    "x" * 100_000,
    "site\n",
    "nul\x00",
    "é",
    "e\u0301",
    "\u202ertl",
    "😷",
    "'); DROP TABLE sites; --",
    'a"b',
    "a;b",
]


def _name_commands(name: str, out: Path) -> list[list[str]]:
    # --opt=value, so that a name starting with '-' is a value, not an option.
    return [
        ["add-site", f"--vocab={out.parent / 'in' / 'a.csv'}", "--", name],
        ["add-site", f"--vocab={out.parent / 'in' / 'a.csv'}", "--replace", "--", name],
        ["build-index", f"--site={name}", "--model=fake"],
        ["map", f"--source={name}", "--target=a", "--model=fake"],
        ["map", "--source=b", f"--target={name}", "--model=fake"],
        ["export", f"--source={name}", "--target=a", "--format=sssom", f"-o{out}"],
        ["export-events", "--source=b", f"--target={name}", f"-o{out}"],
        ["review", "--source=b", f"--target={name}"],
        ["accept", f"--source={name}", "--target=a", "B1"],
    ]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[:24])
def test_hostile_site_names_are_refused_everywhere(ws, tmp_path, name):
    """A name that cannot be a folder name is refused by every command that takes a site,
    and nothing is written inside or outside the workspace."""
    for args in _name_commands(name, tmp_path / "out"):
        refused(ws, args, f"invalid site name {name!r}: {NAME_RULE}", tmp_path)


def test_hostile_site_name_in_a_new_folder_creates_nothing(tmp_path):
    (tmp_path / "a.csv").write_text(SITE_A)
    ws = Workspace(tmp_path / "new")
    refused(
        ws,
        ["add-site", "--vocab", str(tmp_path / "a.csv"), "--", "../x"],
        f"invalid site name '../x': {NAME_RULE}",
        tmp_path,
    )
    assert not ws.root.exists()


@pytest.mark.parametrize(
    "value", ["'); DROP TABLE concepts; --", "a' OR '1'='1", "$site", "b\x00", "😷" * 1000]
)
def test_hostile_query_parameters_are_data(ws, tmp_path, value):
    """A parameter is bound, never formatted into SQL: it matches nothing and drops nothing."""
    before = tree(tmp_path)
    result = ok(ws, "query", "site_concepts", "--param", "site", value)
    assert result.output == "(no rows)\n"
    assert tree(tmp_path) == before
    counts = ok(ws, "sql", "SELECT count(*) AS n FROM concepts", "--format", "csv")
    assert counts.output == "n\n9\n"


# --- hostile but valid codes and descriptions round-trip ---------------------------------------

# (code, description): quotes, separators, SQL, format strings, path pieces, unicode (combining,
# right-to-left, emoji), control characters (tab, newline, NUL), 100k-character strings.
HOSTILE_ROWS = [
    ("'); DROP TABLE concepts; --", "'; DELETE FROM mappings; -- drop"),
    ('A"1', 'say "hi" quoted'),
    ("B'2", "it's apostrophe"),
    ("C;3", "semi; colon"),
    ("D,4", "comma, separated"),
    ("E\t5", "tab\tinside"),
    ("F\n6", "line\nbreak"),
    ("G\x007", "nul\x00byte"),
    ("e\u0301", "cafe\u0301 combining"),
    ("\u202eRTL\u202c", "\u05e9\u05dc\u05d5\u05dd hebrew"),
    ("😷", "face 😷 mask"),
    ("x" * 100_000, "long " + "y" * 100_000),
    ("%s{0}$1\\N", "%d {x} $source \\backslash"),
    ("NULL", "NaN"),
    ("$source", "None"),
    ("../../etc/passwd", "path ../.."),
    ("=cmd|' /C calc'!A0", "=1+1 formula"),
]


def _write_vocab(path: Path, rows: list[tuple[str, str]]) -> Path:
    frame = pd.DataFrame(rows, columns=["code", "description"])
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return path


def _sssom_rows(path: Path) -> pd.DataFrame:
    lines = [line for line in path.read_text().split("\n") if not line.startswith("#")]
    return pd.read_csv(io.StringIO("\n".join(lines)), sep="\t", dtype=str, keep_default_na=False)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_hostile_codes_round_trip_exactly(tmp_path, suffix):
    """add-site -> sql/query -> map -> export (sssom, fhir) -> export-events: every code
    and description comes back exactly as given."""
    # Each description gets its own word (w0, w1, ...) so the fake encoder tells them apart.
    source = [(c, f"{d} w{i}") for i, (c, d) in enumerate(HOSTILE_ROWS)]
    target = [("T:" + c, d) for c, d in source]
    twin = {c: "T:" + c for c, _ in source}
    events = pd.DataFrame({"subject_id": [f"{c}|{i}" for i, (c, _) in enumerate(source)]})
    events["code"] = [c for c, _ in source]
    events.to_parquet(tmp_path / "events.parquet", index=False)
    ws = Workspace(tmp_path / "ws")
    h_vocab = _write_vocab(tmp_path / f"h{suffix}", source)
    ok(ws, "add-site", "h", "--vocab", str(h_vocab), "--events", str(tmp_path / "events.parquet"))
    ok(ws, "add-site", "t", "--vocab", str(_write_vocab(tmp_path / f"t{suffix}", target)))

    stored = ok(
        ws,
        "sql",
        "SELECT code, description FROM concepts WHERE site = 'h' ORDER BY concept_id",
        "--format",
        "json",
    )
    assert [(r["code"], r["description"]) for r in json.loads(stored.output)] == source
    named = ok(ws, "query", "site_concepts", "--param", "site", "h", "--format", "json")
    assert [r["code"] for r in json.loads(named.output)] == [c for c, _ in source]

    for site in ("h", "t"):
        ok(ws, "build-index", "--site", site, "--model", "fake")
    out = tmp_path / "m.csv"
    ok(
        ws,
        "map",
        "--source",
        "h",
        "--target",
        "t",
        "--model",
        "fake",
        "--k",
        "1",
        "--limit",
        "0",
        "--output",
        str(out),
    )
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert dict(zip(written["source_code"], written["target_code"], strict=True)) == twin
    assert dict(zip(written["source_code"], written["source_description"], strict=True)) == dict(
        source
    )
    pairs = ok(
        ws, "sql", "SELECT source_code, target_code, score FROM mappings", "--format", "json"
    )
    rows = json.loads(pairs.output)
    assert {r["source_code"]: r["target_code"] for r in rows} == twin
    assert {round(r["score"], 5) for r in rows} == {1.0}

    ok(
        ws,
        "export",
        "--source",
        "h",
        "--target",
        "t",
        "--format",
        "sssom",
        "-o",
        str(tmp_path / "m.sssom.tsv"),
    )
    sssom = _sssom_rows(tmp_path / "m.sssom.tsv")
    assert dict(zip(sssom["subject_id"], sssom["object_id"], strict=True)) == {
        f"h:{c}": f"t:{t}" for c, t in twin.items()
    }
    assert set(sssom["subject_label"]) == {d for _, d in source}
    ok(
        ws,
        "export",
        "--source",
        "h",
        "--target",
        "t",
        "--format",
        "fhir",
        "-o",
        str(tmp_path / "m.json"),
    )
    group = json.loads((tmp_path / "m.json").read_text())["group"][0]
    assert {e["code"]: e["target"][0]["code"] for e in group["element"]} == twin
    # Usagi needs OMOP concept_ids as targets: this target's codes are text, so it is refused.
    usagi = invoke(
        ws, "export", "--source", "h", "--target", "t", "--format", "usagi",
        "-o", str(tmp_path / "usagi.csv"),
    )  # fmt: skip
    assert (usagi.exit_code, usagi.stdout) == (1, "")
    assert usagi.stderr.startswith("Error: --format usagi needs OMOP concept_ids (integers)")
    assert not (tmp_path / "usagi.csv").exists()

    ok(
        ws,
        "export-events",
        "--source",
        "h",
        "--target",
        "t",
        "--format",
        "parquet",
        "-o",
        str(tmp_path / "ev.parquet"),
    )
    recoded = pd.read_parquet(tmp_path / "ev.parquet")
    assert sorted(zip(recoded["subject_id"], recoded["code"], strict=True)) == sorted(
        zip(events["subject_id"], events["code"].map(twin), strict=True)
    )


def test_huge_line_round_trips(ws, tmp_path):
    """A 2-million-character description is one (huge) CSV field, not a parser crash."""
    text = "huge " + "z" * 2_000_000
    path = tmp_path / "huge.csv"
    path.write_text(f'code,description\nH1,"{text}"\n')
    assert ok(ws, "add-site", "huge", "--vocab", str(path)).output == (
        "added site 'huge': 1 concepts\n"
    )
    stored = ok(
        ws, "sql", "SELECT description FROM concepts WHERE site = 'huge'", "--format", "json"
    )
    assert json.loads(stored.output) == [{"description": text}]


# --- broken files ------------------------------------------------------------------------------


def _parquet_bytes(frame: pd.DataFrame | pa.Table) -> bytes:
    sink = io.BytesIO()
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame)
    pq.write_table(table, sink)
    return sink.getvalue()


GOOD_PARQUET = _parquet_bytes(
    pd.DataFrame({"code": [f"C{i}" for i in range(500)], "description": ["d"] * 500})
)
PARQUET_MAGIC = (
    "Could not open Parquet input source '{p}': Parquet magic bytes not found in footer. "
    "Either the file is corrupted or this is not a parquet file."
)

# (id, file name, content, option, message): {p} is the file's path. Vocabulary files go to a
# new site; events files come with a valid vocabulary.
BROKEN_FILES = [
    ("empty", "v.csv", b"", "--vocab", "{p} is empty: expected a header line and rows"),
    ("blank", "v.csv", b" \n\n", "--vocab", "{p} is empty: expected a header line and rows"),
    (
        "bom-only",
        "v.csv",
        b"\xef\xbb\xbf",
        "--vocab",
        "{p} is empty: expected a header line and rows",
    ),
    (
        "header-only",
        "v.csv",
        b"code,description\n",
        "--vocab",
        "{p}: no concepts (the file has a header but no rows)",
    ),
    (
        "wrong-columns",
        "v.csv",
        b"id,name\n1,x\n",
        "--vocab",
        "{p}: missing required column 'code' (required: code, description; found: id, name)",
    ),
    (
        "extra-fields-first-row",
        "v.csv",
        b"code,description\nA1,x,shifted,columns\n",
        "--vocab",
        "{p}, line 2: 4 fields, but the header has 2",
    ),
    (
        "extra-fields-later-row",
        "v.tsv",
        b"code\tdescription\nA1\tx\nA2\ty\tz\n",
        "--vocab",
        "{p}, line 3: 3 fields, but the header has 2",
    ),
    (
        "unterminated-quote",
        "v.csv",
        b'code,description\n"A1,x\n',
        "--vocab",
        "cannot parse {p}: Error tokenizing data. C error: EOF inside string starting at row 1",
    ),
    (
        "latin-1",
        "v.csv",
        "code,description\nA1,café\n".encode("latin-1"),
        "--vocab",
        "{p} is not valid UTF-8: byte 0xe9 on line 2. Re-save the file as UTF-8.",
    ),
    (
        "utf-16",
        "v.csv",
        "code,description\nA1,x\n".encode("utf-16"),
        "--vocab",
        "{p} is not valid UTF-8: byte 0xff on line 1. Re-save the file as UTF-8.",
    ),
    (
        "frequency-text",
        "v.csv",
        b"code,description,frequency\nA1,x,many\n",
        "--vocab",
        "{p}, line 2: column 'frequency' must be a non-negative integer, got 'many'",
    ),
    (
        "frequency-negative",
        "v.csv",
        b"code,description,frequency\nA1,x,-3\n",
        "--vocab",
        "{p}, line 2: column 'frequency' must be a non-negative integer, got '-3'",
    ),
    (
        "empty-description",
        "v.csv",
        b"code,description\nA1,x\nA2,\n",
        "--vocab",
        "{p}, line 3: empty value in column 'description'",
    ),
    (
        "duplicate-code",
        "v.csv",
        b"code,description\nA1,x\nA1,y\n",
        "--vocab",
        "{p}, line 3: duplicate code 'A1' in column 'code' (first seen on line 2)",
    ),
    (
        "truncated-parquet",
        "v.parquet",
        GOOD_PARQUET[: len(GOOD_PARQUET) // 2],
        "--vocab",
        "cannot read Parquet file {p}: " + PARQUET_MAGIC,
    ),
    (
        "csv-named-parquet",
        "v.parquet",
        b"code,description\nA1,x\n",
        "--vocab",
        "cannot read Parquet file {p}: " + PARQUET_MAGIC,
    ),
    (
        "parquet-list-codes",
        "v.parquet",
        _parquet_bytes(pd.DataFrame({"code": [["A1"], ["A2"]], "description": ["x", "y"]})),
        "--vocab",
        "{p}, row 1: column 'code' holds a list, not text or a number",
    ),
    (
        "parquet-binary-descriptions",
        "v.parquet",
        _parquet_bytes(pa.table({"code": ["A1"], "description": pa.array([b"x"], pa.binary())})),
        "--vocab",
        "{p}, row 1: column 'description' holds bytes, not text or a number",
    ),
    (
        "parquet-null-description",
        "v.parquet",
        _parquet_bytes(pd.DataFrame({"code": [1, 2], "description": ["x", None]})),
        "--vocab",
        "{p}, row 2: empty value in column 'description'",
    ),
    (
        "unsupported-type",
        "v.xlsx",
        b"PK\x03\x04",
        "--vocab",
        "unsupported file type '.xlsx' for {p}: use .csv, .tsv or .parquet",
    ),
    (
        "events-unknown-code",
        "e.csv",
        b"subject_id,code\np1,ZZ\n",
        "--events",
        "{p}, line 2: code 'ZZ' in column 'code' is not in the site's vocabulary",
    ),
    (
        "events-bad-time",
        "e.csv",
        b"subject_id,code,time\np1,A1,yesterday\n",
        "--events",
        "{p}, line 2: column 'time' is not a date/time: 'yesterday'",
    ),
    (
        "events-wrong-columns",
        "e.csv",
        b"patient,code\np1,A1\n",
        "--events",
        "{p}: missing required column 'subject_id' (required: subject_id, code; found: "
        "patient, code)",
    ),
    (
        "events-latin-1",
        "e.csv",
        "subject_id,code\np1,A1\nJosé,A1\n".encode("latin-1"),
        "--events",
        "{p} is not valid UTF-8: byte 0xe9 on line 3. Re-save the file as UTF-8.",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "option", "message"),
    [case[1:] for case in BROKEN_FILES],
    ids=[case[0] for case in BROKEN_FILES],
)
def test_broken_files_are_refused(ws, tmp_path, name, content, option, message):
    path = tmp_path / name
    path.write_bytes(content)
    args = ["add-site", "new", option, str(path)]
    if option == "--events":
        args += ["--vocab", str(tmp_path / "in" / "a.csv")]
    refused(ws, args, message.format(p=path), tmp_path)
    # --replace over an existing site fails the same way and keeps the old site.
    refused(ws, [*args[:1], "a", *args[2:], "--replace"], message.format(p=path), tmp_path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _meds(folder: Path, data: bytes) -> Path:
    (folder / "metadata").mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "metadata" / "codes.parquet").write_bytes(
        _parquet_bytes(pd.DataFrame({"code": ["A1"], "description": ["x"]}))
    )
    (folder / "data" / "0.parquet").write_bytes(data)
    return folder


def _omop_folder(folder: Path, concept: bytes) -> Path:
    folder.mkdir()
    (folder / "concept.parquet").write_bytes(concept)
    return folder


BROKEN_SOURCES: list[tuple[str, str, Callable[[Path], Path], str]] = [
    (
        "meds-truncated-data",
        "--meds",
        lambda p: _meds(p / "meds", GOOD_PARQUET[:100]),
        "cannot read Parquet file {p}/data/0.parquet: Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file.",
    ),
    (
        "meds-a-file",
        "--meds",
        lambda p: p / "in" / "a.csv",
        "not a folder: {p} (a MEDS dataset is a folder with metadata/codes.parquet and "
        "data/**/*.parquet)",
    ),
    (
        "omop-truncated-concept",
        "--omop",
        lambda p: _omop_folder(p / "cdm", GOOD_PARQUET[: len(GOOD_PARQUET) // 2]),
        "cannot read Parquet file {p}/concept.parquet: Invalid Input Error: No magic bytes "
        "found at end of file '{p}/concept.parquet'",
    ),
    (
        "omop-empty-duckdb",
        "--omop",
        lambda p: _write(p / "cdm.duckdb", b""),
        "{p} is not a DuckDB database file; an OMOP source is a DuckDB file or a folder of "
        "CSV/Parquet tables named after OMOP tables (concept.csv, measurement.parquet, ...)",
    ),
]


@pytest.mark.parametrize(
    ("option", "make", "message"),
    [case[1:] for case in BROKEN_SOURCES],
    ids=[case[0] for case in BROKEN_SOURCES],
)
def test_broken_omop_and_meds_sources_are_refused(ws, tmp_path, option, make, message):
    path = make(tmp_path)
    refused(ws, ["add-site", "new", option, str(path)], message.format(p=path), tmp_path)


# --- corrupt or lying indexes ------------------------------------------------------------------


def _edit_meta(**changes) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        meta.update(changes)
        (folder / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if v != ...}))

    return edit


def _write_file(name: str, make: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / name).write_bytes(make((folder / name).read_bytes()))

    return edit


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def _lexical_posing_as_fake(folder: Path) -> None:
    """Site a's lexical index (dim 4096), copied over its fake index (dim 32) with meta.json
    edited to say it is the fake model's: an index built with another model's dimension."""
    lexical = folder.parent / "lexical"
    shutil.copy(lexical / "index.faiss", folder / "index.faiss")
    meta = json.loads((lexical / "meta.json").read_text())
    meta.update(model="fake", model_fingerprint="fake-v1")
    (folder / "meta.json").write_text(json.dumps(meta))


IDX = "{d}/index.faiss"
META = "{d}/meta.json"
STALE = "index for site 'a' (model fake) is stale: "
UNUSABLE = "index for site 'a' (model fake) cannot be used: "
REBUILD = ". Run 'harmonize build-index --site a --model fake --force'."

# (id, how index folder indexes/a/fake is damaged, the exact error of `map`)
BROKEN_INDEXES: list[tuple[str, Callable[[Path], None], str]] = [
    (
        "index-truncated",
        _write_file("index.faiss", lambda b: b[: len(b) // 2]),
        f"{UNUSABLE}{IDX} is missing or does not match {META}{REBUILD}",
    ),
    (
        "index-empty",
        _write_file("index.faiss", lambda b: b""),
        f"{UNUSABLE}{IDX} is missing or does not match {META}{REBUILD}",
    ),
    (
        "index-zeroed-same-size",
        _write_file("index.faiss", lambda b: bytes(len(b))),
        f"{UNUSABLE}{IDX} does not match the checksum in {META}{REBUILD}",
    ),
    (
        "index-vector-byte-flipped",
        _write_file("index.faiss", _flip_last_byte),
        f"{UNUSABLE}{IDX} does not match the checksum in {META}{REBUILD}",
    ),
    (
        "index-deleted",
        lambda d: (d / "index.faiss").unlink(),
        "no index for site 'a' with model fake. "
        "Run 'harmonize build-index --site a --model fake' first.",
    ),
    (
        "meta-garbage",
        _write_file("meta.json", lambda b: b"{"),
        f"{STALE}meta.json is unreadable{REBUILD}",
    ),
    (
        "meta-empty",
        _write_file("meta.json", lambda b: b""),
        f"{STALE}meta.json is unreadable{REBUILD}",
    ),
    (
        "meta-list",
        _write_file("meta.json", lambda b: b"[]"),
        f"{STALE}meta.json is unreadable{REBUILD}",
    ),
    (
        "meta-null",
        _write_file("meta.json", lambda b: b"null"),
        f"{STALE}meta.json is unreadable{REBUILD}",
    ),
    (
        "meta-binary",
        _write_file("meta.json", lambda b: b"\xff\xfe\x00"),
        f"{STALE}meta.json is unreadable{REBUILD}",
    ),
    (
        "meta-wrong-count",
        _edit_meta(count=7),
        f"{UNUSABLE}{IDX} holds 5x32, meta.json says otherwise{REBUILD}",
    ),
    (
        "meta-wrong-dim",
        _edit_meta(dim=384),
        f"{UNUSABLE}{IDX} holds 5x32, meta.json says otherwise{REBUILD}",
    ),
    (
        "meta-wrong-model",
        _edit_meta(model="minilm"),
        f"{STALE}meta.json says the index holds model minilm{REBUILD}",
    ),
    (
        "meta-wrong-fingerprint",
        _edit_meta(model_fingerprint="fake-v0"),
        f"{STALE}the model's weights or file changed since the index was built{REBUILD}",
    ),
    (
        "meta-wrong-vocabulary",
        _edit_meta(vocab_sha256="0" * 64),
        f"{STALE}the site's vocabulary changed since the index was built{REBUILD}",
    ),
    (
        "meta-wrong-checksum",
        _edit_meta(index_sha256="0" * 64),
        f"{UNUSABLE}{IDX} does not match the checksum in {META}{REBUILD}",
    ),
    (
        "meta-count-as-text",
        _edit_meta(count="5"),
        f"{STALE}meta.json has no valid 'count'{REBUILD}",
    ),
    ("meta-dim-as-bool", _edit_meta(dim=True), f"{STALE}meta.json has no valid 'dim'{REBUILD}"),
    (
        "meta-model-as-number",
        _edit_meta(model=1),
        f"{STALE}meta.json has no valid 'model'{REBUILD}",
    ),
    *[
        (
            f"meta-without-{key}",
            _edit_meta(**{key: ...}),
            f"{STALE}meta.json has no valid '{key}'{REBUILD}",
        )
        for key in (
            "model",
            "model_fingerprint",
            "vocab_sha256",
            "dim",
            "count",
            "index_bytes",
            "index_sha256",
        )
    ],
    (
        "another-models-dimension",
        _lexical_posing_as_fake,
        "the indexes of 'b' (dim 32) and 'a' (dim 4096) for model fake differ in dimension; "
        "the model gives dim 32. Run 'harmonize build-index --site a --model fake --force'.",
    ),
]


@pytest.mark.parametrize(
    ("damage", "message"),
    [case[1:] for case in BROKEN_INDEXES],
    ids=[case[0] for case in BROKEN_INDEXES],
)
def test_map_refuses_a_corrupt_or_lying_index(ws, tmp_path, damage, message):
    """map names the rebuild command instead of crashing or returning wrong results; `sites`
    still lists the workspace; the command it names repairs the index and map then gives the
    mapping it gave before the damage."""
    mapping = ok(ws, "sql", MAPPING_SQL, "--format", "csv").output
    folder = ws.root / "indexes" / "a" / "fake"
    damage(folder)
    args = ["map", "--source", "b", "--target", "a", "--model", "fake", "--k", "3"]
    refused(ws, args, message.format(d=folder), tmp_path)
    ok(ws, "sites")
    rebuild = message.rsplit("Run 'harmonize ", 1)[1].split("'")[0].split()
    ok(ws, *rebuild)
    ok(ws, *args)
    assert ok(ws, "sql", MAPPING_SQL, "--format", "csv").output == mapping


def test_a_cache_file_of_another_model_is_ignored(ws):
    """The fake model's embedding cache overwritten by another model's (vectors of dim 64):
    its fingerprint differs, so a rebuild embeds afresh and map gives the mapping it gave
    before."""
    mapping = ok(ws, "sql", MAPPING_SQL, "--format", "csv").output
    path = ws.root / "cache" / "fake.parquet"
    keys = pq.read_table(path).column("sha256")
    vectors = pa.FixedSizeListArray.from_arrays(pa.array([0.125] * (64 * len(keys))), 64)
    table = pa.table({"sha256": keys, "embedding": vectors})
    pq.write_table(table.replace_schema_metadata({"fingerprint": "other-model"}), path)
    built = ok(ws, "build-index", "--site", "a", "--model", "fake", "--force")
    assert "5 concepts, dim 32, 5 newly embedded" in built.output
    ok(ws, "map", "--source", "b", "--target", "a", "--model", "fake", "--k", "3")
    assert ok(ws, "sql", MAPPING_SQL, "--format", "csv").output == mapping
