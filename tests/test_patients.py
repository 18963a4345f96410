"""Patients for a prediction task: wide and long readers, labels, splits, and add-site with them.

Every bad patient file is an InputError with the exact message the user sees, and through the
CLI it leaves the workspace byte for byte as it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.sites.patients import (
    LabelSpec,
    read_levels,
    read_long_patients,
    read_wide_patients,
    stratified_split,
)
from harmonize.sites.registry import PatientInput, add_site
from tests.helpers import run, snapshot

CODES = {"A1", "A2", "A3", "A4", "A5"}
TASK = LabelSpec("diagnosis", "I")


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def levels_frame(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["code", "value", "text"])


# --- wide reader ---------------------------------------------------------------------------


def test_wide_reader_generates_ids_and_sorts_long_events(tmp_path):
    path = write(tmp_path, "w.csv", "A2,A1,diagnosis\nP,A,I\nM,P,R\nA,A,R\n")
    data = read_wide_patients(path, CODES, TASK)
    assert list(data.events.columns) == ["subject_id", "time", "code", "value"]
    assert data.events["time"].isna().all()
    assert data.events[["subject_id", "code", "value"]].values.tolist() == [
        ["000001", "A1", "A"],
        ["000001", "A2", "P"],
        ["000002", "A1", "P"],
        ["000002", "A2", "M"],
        ["000003", "A1", "A"],
        ["000003", "A2", "A"],
    ]
    assert data.labels.values.tolist() == [
        ["000001", "diagnosis", "I"],
        ["000002", "diagnosis", "R"],
        ["000003", "diagnosis", "R"],
    ]


def test_wide_reader_id_prefix(tmp_path):
    path = write(tmp_path, "w.csv", "A1,diagnosis\nP,I\nA,R\n")
    data = read_wide_patients(path, CODES, TASK, id_prefix="test-")
    assert data.labels["subject_id"].tolist() == ["test-000001", "test-000002"]
    assert sorted(set(data.events["subject_id"])) == ["test-000001", "test-000002"]


def test_wide_reader_takes_subject_ids_from_the_file(tmp_path):
    path = write(
        tmp_path,
        "w.csv",
        "subject_id,A3,diagnosis,A1\n z9 ,P, I ,A\na1,A,R,M\nm5,M,R,P\n",
    )
    data = read_wide_patients(path, CODES, TASK)
    # Events sorted by subject then code; labels keep the file's order; values are stripped.
    assert data.events[["subject_id", "code", "value"]].values.tolist() == [
        ["a1", "A1", "M"],
        ["a1", "A3", "A"],
        ["m5", "A1", "P"],
        ["m5", "A3", "M"],
        ["z9", "A1", "A"],
        ["z9", "A3", "P"],
    ]
    assert data.labels.values.tolist() == [
        ["z9", "diagnosis", "I"],
        ["a1", "diagnosis", "R"],
        ["m5", "diagnosis", "R"],
    ]


def test_wide_reader_accepts_declared_levels(tmp_path):
    path = write(tmp_path, "w.csv", "A1,A5,diagnosis\nP,H,I\nA,L,R\n")
    levels = levels_frame(("A5", "H", "high muscle pain"), ("A5", "L", "low muscle pain"))
    data = read_wide_patients(path, CODES, TASK, levels)
    assert data.events.loc[data.events["code"] == "A5", "value"].tolist() == ["H", "L"]


@pytest.mark.parametrize(
    ("text", "levels", "message"),
    [
        (
            "A1,X7,diagnosis\nP,P,I\nA,A,R\n",
            None,
            "{p}: column 'X7' is not a code of the site's vocabulary",
        ),
        (
            "X8,A1,X7,diagnosis\nP,P,P,I\nA,A,A,R\n",
            None,
            "{p}: column 'X8' is not a code of the site's vocabulary (2 such columns)",
        ),
        (
            "A1,A2,outcome\nP,A,I\nA,A,R\n",
            None,
            "{p}: label column 'diagnosis' not found (columns: A1, A2, outcome)",
        ),
        (
            "c1,c2,c3,c4,c5,c6,c7,c8,c9\n1,2,3,4,5,6,7,8,9\n",
            None,
            "{p}: label column 'diagnosis' not found (columns: c1, c2, c3, c4, c5, c6, c7, "
            "c8, ...)",
        ),
        ("A1,diagnosis\n", None, "{p}: no patients (the file has a header but no rows)"),
        (
            "A1,diagnosis\nP,R\nA,R\n",
            None,
            "{p}: label column 'diagnosis' has no 'I' rows: a binary task needs both classes",
        ),
        (
            "A1,diagnosis\nP,I\nA,I\n",
            None,
            "{p}: label column 'diagnosis' has only 'I' rows: a binary task needs both classes",
        ),
        ("A1,diagnosis\nP,I\nA, \n", None, "{p}: empty value in label column 'diagnosis'"),
        (
            "A1,A5,diagnosis\nP,H,I\nA,A,R\n",
            "strict",
            "{p}: column 'A5' has value 'H', which is not P, A or M; declare its levels with "
            "levels FILE (code,value,text)",
        ),
        (
            "A1,A5,diagnosis\nP,H,I\nA,X,R\n",
            levels_frame(("A5", "L", "low"), ("A5", "H", "high"), ("A1", "Q", "other code")),
            "{p}: column 'A5' has value 'X', which is not P, A or M; declared levels: H, L",
        ),
        (
            "A1,diagnosis\np,I\nA,R\n",
            "strict",
            "{p}: column 'A1' has value 'p', which is not P, A or M; declare its levels with "
            "levels FILE (code,value,text)",
        ),
        (
            "A1,diagnosis\np,I\nA,R\n",
            None,
            "{p}: column 'A1' has value 'p', which is not P, A or M; write P, A or M (upper "
            "case) for present, absent or missing",
        ),
        (
            "A1,diagnosis\nP,I\n,R\n",
            None,
            "{p}: column 'A1' has value '', which is not P, A or M; write P, A or M (upper "
            "case) for present, absent or missing",
        ),
        (
            "subject_id,A1,diagnosis\np1,P,I\np2,A,R\n p1,A,R\n",
            None,
            "{p}: duplicate subject_id 'p1'",
        ),
    ],
)
def test_wide_reader_errors(tmp_path, text, levels, message):
    """``levels`` "strict" is strict with no levels file; a levels frame is strict with it."""
    path = write(tmp_path, "w.csv", text)
    strict = levels is not None
    levels = None if isinstance(levels, str) else levels
    with pytest.raises(InputError) as info:
        read_wide_patients(path, CODES, TASK, levels, strict=strict)
    assert str(info.value) == message.format(p=path)


def test_wide_reader_refuses_a_blank_subject_id(tmp_path):
    """A blank id is refused, as read_events refuses one in long events."""
    path = write(tmp_path, "w.csv", "subject_id,A1,diagnosis\np1,P,I\n ,A,R\n")
    with pytest.raises(InputError, match="subject_id"):
        read_wide_patients(path, CODES, TASK)


# --- long reader ---------------------------------------------------------------------------


def long_files(tmp_path, events: str, labels: str):
    return write(tmp_path, "events.csv", events), write(tmp_path, "labels.csv", labels)


EVENTS = "subject_id,code,value\np1,A1,P\np1,A2,A\np2,A1,M\np3,A5,H\n"
LEVELS = levels_frame(("A5", "H", "high muscle pain"))


def test_long_reader_reads_events_and_labels(tmp_path):
    events, labels = long_files(tmp_path, EVENTS, "subject_id,diagnosis\np2,R\np1,I\np3,R\np4,R\n")
    data = read_long_patients(events, labels, CODES, TASK, LEVELS)
    assert data.events[["subject_id", "code", "value"]].values.tolist() == [
        ["p1", "A1", "P"],
        ["p1", "A2", "A"],
        ["p2", "A1", "M"],
        ["p3", "A5", "H"],
    ]
    # A labelled subject without events (p4) is kept: a patient with no findings.
    assert data.labels.values.tolist() == [
        ["p2", "diagnosis", "R"],
        ["p1", "diagnosis", "I"],
        ["p3", "diagnosis", "R"],
        ["p4", "diagnosis", "R"],
    ]


@pytest.mark.parametrize(
    ("events_text", "labels_text", "message"),
    [
        (
            EVENTS,
            "subject_id,diagnosis\np1,I\np2,R\n",
            "{e}: subject 'p3' has events but no label",
        ),
        (EVENTS, "subject,diagnosis\np1,I\n", "{l}: missing required column 'subject_id'"),
        (EVENTS, "subject_id,outcome\np1,I\n", "{l}: missing required column 'diagnosis'"),
        (
            EVENTS,
            "subject_id,diagnosis\np1,I\np2,I\np3,I\n",
            "{l}: label column 'diagnosis' has only 'I' rows: a binary task needs both classes",
        ),
        (
            "subject_id,code\np1,A1\n",
            "subject_id,diagnosis\np1,I\n",
            "{e}: column 'value' is required for patient data (P, A, M or a level)",
        ),
        (
            "subject_id,code,value\np1,A1,P\np2,A1,\n",
            "subject_id,diagnosis\np1,I\np2,R\n",
            "{e}: column 'value' is required for patient data (P, A, M or a level)",
        ),
        (
            "subject_id,code,value\np1,A1,P\np2,A1,Y\n",
            "subject_id,diagnosis\np1,I\np2,R\n",
            "{e}: column 'A1' has value 'Y', which is not P, A or M; declare its levels with "
            "levels FILE (code,value,text)",
        ),
        (
            "subject_id,code,value\np1,Z9,P\n",
            "subject_id,diagnosis\np1,I\n",
            "{e}, line 2: code 'Z9' in column 'code' is not in the site's vocabulary",
        ),
    ],
)
def test_long_reader_errors(tmp_path, events_text, labels_text, message):
    events, labels = long_files(tmp_path, events_text, labels_text)
    with pytest.raises(InputError) as info:
        read_long_patients(events, labels, CODES, TASK, LEVELS, strict=True)
    assert str(info.value) == message.format(e=events, l=labels)


def test_long_reader_refuses_duplicate_subjects_in_the_labels_file(tmp_path):
    """Two label rows for one subject would give it two labels; the wide reader refuses the
    same mistake with this message."""
    events, labels = long_files(tmp_path, EVENTS, "subject_id,diagnosis\np1,I\np2,R\np3,R\np1,R\n")
    with pytest.raises(InputError) as info:
        read_long_patients(events, labels, CODES, TASK, LEVELS, strict=True)
    assert str(info.value) == f"{labels}: duplicate subject_id 'p1'"


def test_patient_input_long_uses_the_split_column(tmp_path):
    events, labels = long_files(
        tmp_path,
        EVENTS,
        "subject_id,diagnosis,split\np1,I,train\np2,R, test\np3,R,train\np4,I,test\n",
    )
    got_events, got_labels = PatientInput(events, TASK, labels=labels).read(
        CODES, levels_frame(("A5", "H", "high"))
    )
    assert len(got_events) == 4
    assert got_labels[["subject_id", "value", "split"]].values.tolist() == [
        ["p1", "I", "train"],
        ["p2", "R", "test"],
        ["p3", "R", "train"],
        ["p4", "I", "test"],
    ]


def test_patient_input_long_split_column_must_be_train_or_test(tmp_path):
    events, labels = long_files(
        tmp_path,
        EVENTS,
        "subject_id,diagnosis,split\np1,I,train\np2,R,validation\np3,R,test\n",
    )
    patient_input = PatientInput(events, TASK, labels=labels)
    with pytest.raises(InputError) as info:
        patient_input.read(CODES, levels_frame(("A5", "H", "high")))
    assert str(info.value) == f"{labels}: column 'split' must be train or test, got 'validation'"


def test_patient_input_long_without_split_column_is_stratified(tmp_path):
    rows = "".join(f"p{i},A1,{'P' if i < 4 else 'A'}\n" for i in range(10))
    labels_rows = "".join(f"p{i},{'I' if i < 4 else 'R'}\n" for i in range(10))
    events, labels = long_files(
        tmp_path, "subject_id,code,value\n" + rows, "subject_id,diagnosis\n" + labels_rows
    )
    _, got = PatientInput(events, TASK, labels=labels, test_fraction=0.5, random_state=3).read(
        CODES, read_levels(None)
    )
    test = got[got["split"] == "test"]
    assert (test["value"] == "I").sum() == 2 and (test["value"] == "R").sum() == 3
    expected = stratified_split(got, "I", 0.5, 3)
    assert got["split"].tolist() == list(expected)


def test_patient_input_long_refuses_test_patients(tmp_path):
    events, labels = long_files(tmp_path, EVENTS, "subject_id,diagnosis\np1,I\np2,R\np3,R\n")
    patient_input = PatientInput(events, TASK, labels=labels, test_patients=events)
    with pytest.raises(InputError) as info:
        patient_input.read(CODES, read_levels(None))
    assert str(info.value) == (
        "test_patients works with wide patient tables; for long events put a 'split' column "
        "(train/test) in the labels file instead"
    )


def test_patient_input_wide_test_file_and_clash(tmp_path):
    train = write(tmp_path, "train.csv", "subject_id,A1,diagnosis\np1,P,I\np2,A,R\n")
    test = write(tmp_path, "test.csv", "A1,diagnosis\nA,I\nP,R\n")
    events, labels = PatientInput(train, TASK, test_patients=test).read(CODES, read_levels(None))
    assert labels[["subject_id", "split"]].values.tolist() == [
        ["p1", "train"],
        ["p2", "train"],
        ["test-000001", "test"],
        ["test-000002", "test"],
    ]
    assert events["subject_id"].tolist() == ["p1", "p2", "test-000001", "test-000002"]
    clash = write(tmp_path, "clash.csv", "subject_id,A1,diagnosis\np3,A,I\np2,P,R\n")
    with pytest.raises(InputError) as info:
        PatientInput(train, TASK, test_patients=clash).read(CODES, read_levels(None))
    assert str(info.value) == f"{clash}: subject_id 'p2' is also a training patient"


def test_read_levels(tmp_path):
    assert read_levels(None).columns.tolist() == ["code", "value", "text"]
    good = write(tmp_path, "levels.csv", "code,value,text,note\nA5,H,high muscle pain,x\n")
    assert read_levels(good).values.tolist() == [["A5", "H", "high muscle pain"]]
    bad = write(tmp_path, "bad.csv", "code,value\nA5,H\n")
    with pytest.raises(InputError) as info:
        read_levels(bad)
    assert str(info.value) == f"{bad}: missing required column 'text' (need code, value, text)"


# --- splits and label specs ----------------------------------------------------------------


def labels_of(values: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"subject_id": [f"s{i}" for i in range(len(values))], "value": values})


def test_stratified_split_fraction_per_class_with_rounding():
    # 7 positives * 0.3 = 2.1 -> 2; 13 negatives * 0.3 = 3.9 -> 4.
    labels = labels_of(["I"] * 7 + ["R"] * 13)
    split = stratified_split(labels, "I", 0.3, random_state=0)
    is_test = split == "test"
    assert set(split) == {"train", "test"}
    assert is_test[:7].sum() == 2
    assert is_test[7:].sum() == 4
    # Any non-positive value is the negative class.
    mixed = labels_of(["I"] * 4 + ["R", "P", "M", "R", "P", "M"])
    assert (stratified_split(mixed, "I", 0.5)[4:] == "test").sum() == 3


def test_stratified_split_is_seeded():
    labels = labels_of(["I", "R"] * 30)
    first = stratified_split(labels, "I", 0.25, random_state=5)
    assert np.array_equal(first, stratified_split(labels, "I", 0.25, random_state=5))
    assert not np.array_equal(first, stratified_split(labels, "I", 0.25, random_state=6))


@pytest.mark.parametrize(
    ("fraction", "shown"), [(0.0, "0.0"), (1.0, "1.0"), (-0.2, "-0.2"), (2, "2")]
)
def test_stratified_split_rejects_bad_fractions(fraction, shown):
    with pytest.raises(InputError) as info:
        stratified_split(labels_of(["I", "R"]), "I", fraction)
    assert str(info.value) == f"test_fraction must be between 0 and 1, got {shown}"


def test_label_spec_parse():
    assert LabelSpec.parse("diagnosis=I") == LabelSpec("diagnosis", "I")
    assert LabelSpec.parse(" flu = yes ") == LabelSpec("flu", "yes")
    assert LabelSpec.parse("a=b=c") == LabelSpec("a", "b=c")


@pytest.mark.parametrize("text", ["diagnosis", "=I", "diagnosis=", " = ", ""])
def test_label_spec_parse_errors(text):
    with pytest.raises(InputError) as info:
        LabelSpec.parse(text)
    assert str(info.value) == (
        f"label must look like COLUMN=VALUE (e.g. diagnosis=I), got '{text}'"
    )


# --- add_site with patients ----------------------------------------------------------------

WIDE = (
    "subject_id,A1,A5,diagnosis\n"
    "p01,P,H,I\np02,A,A,R\np03,P,L,I\np04,M,A,R\np05,A,A,R\n"
    "p06,P,H,I\np07,A,A,R\np08,A,L,R\np09,P,A,I\np10,A,A,R\n"
)


def test_add_site_with_patients_stores_labels_task_and_levels(tmp_path, workspace, vocab_files):
    patients = write(tmp_path, "patients.csv", WIDE)
    levels = write(
        tmp_path, "levels.csv", "code,value,text\nA5,H,high muscle pain\nA5,L,low muscle pain\n"
    )
    result = add_site(
        workspace,
        "siteA",
        vocab_files["a"],
        patients=PatientInput(patients, TASK, levels=levels, test_fraction=0.5, random_state=1),
    )
    # 4 I -> 2 test; 6 R -> 3 test.
    assert (result.n_train, result.n_test, result.n_events) == (5, 5, 20)
    assert result.message == (
        "added site 'siteA': 5 concepts and 20 events; 10 patients (5 train, 5 test), "
        "task diagnosis=I"
    )
    with workspace.connect(read_only=True) as con:
        labels = con.execute(
            "SELECT subject_id, label, value, split FROM labels WHERE site = 'siteA' "
            "ORDER BY subject_id"
        ).fetchall()
        tasks = con.execute("SELECT * FROM site_tasks").fetchall()
        level_rows = con.execute(
            "SELECT site, code, value, text FROM level_texts ORDER BY value"
        ).fetchall()
        n_events = con.execute("SELECT count(*) FROM events WHERE site = 'siteA'").fetchone()[0]
    expected_split = stratified_split(
        labels_of(["I", "R", "I", "R", "R", "I", "R", "R", "I", "R"]), "I", 0.5, 1
    )
    assert labels == [
        (f"p{i + 1:02d}", "diagnosis", value, split)
        for i, (value, split) in enumerate(zip("IRIRRIRRIR", expected_split, strict=True))
    ]
    assert tasks == [("siteA", "diagnosis", "I")]
    assert level_rows == [
        ("siteA", "A5", "H", "high muscle pain"),
        ("siteA", "A5", "L", "low muscle pain"),
    ]
    assert n_events == 20


def test_add_site_replace_drops_the_old_task(tmp_path, workspace, vocab_files):
    patients = write(tmp_path, "patients.csv", "A1,diagnosis\nP,I\nA,R\nA,R\nP,I\n")
    add_site(workspace, "siteA", vocab_files["a"], patients=PatientInput(patients, TASK))
    result = add_site(workspace, "siteA", vocab_files["a"], replace=True)
    assert result.message == "replaced site 'siteA': 5 concepts"
    with workspace.connect(read_only=True) as con:
        for table in ("labels", "site_tasks", "level_texts", "events"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_add_site_with_frames_and_task(workspace, vocab_files):
    events = pd.DataFrame(
        {
            "subject_id": ["s1", "s2"],
            "time": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[us]"),
            "code": ["A1", "A2"],
            "value": ["P", "A"],
        }
    )
    labels = pd.DataFrame({"subject_id": ["s1", "s2"], "label": "dx", "value": ["y", "n"]})
    result = add_site(
        workspace,
        "siteA",
        vocab_files["a"],
        events=events,
        labels=labels,
        task=LabelSpec("dx", "y"),
    )
    # Labels without a split column are all training patients.
    assert result.message == (
        "added site 'siteA': 5 concepts and 2 events; 2 patients (2 train, 0 test), task dx=y"
    )


def test_add_site_refuses_events_and_patients_together(tmp_path, workspace, vocab_files):
    patients = write(tmp_path, "patients.csv", "A1,diagnosis\nP,I\nA,R\n")
    with pytest.raises(InputError) as info:
        add_site(
            workspace,
            "siteA",
            vocab_files["a"],
            events_path=patients,
            patients=PatientInput(patients, TASK),
        )
    assert str(info.value) == "give either events or patients, not both"
    assert not workspace.db_path.exists()


# --- level texts made from descriptions ------------------------------------------------------


def level_rows(workspace, site: str = "siteA") -> list[tuple[str, str, str]]:
    with workspace.connect(read_only=True) as con:
        return con.execute(
            "SELECT code, value, text FROM level_texts WHERE site = $site ORDER BY code, value",
            {"site": site},
        ).fetchall()


def test_add_site_makes_level_texts_from_descriptions(tmp_path, workspace, vocab_files):
    """A5 'muscle pain' holds H and L: each gets '<description>: <value>', nothing else does."""
    patients = write(tmp_path, "patients.csv", WIDE)
    result = add_site(workspace, "siteA", vocab_files["a"], patients=PatientInput(patients, TASK))
    assert result.n_level_texts == 2
    assert result.message.endswith(
        "task diagnosis=I; 2 level texts made as '<description>: <value>'"
    )
    assert level_rows(workspace) == [("A5", "H", "muscle pain: H"), ("A5", "L", "muscle pain: L")]


def test_levels_file_overrides_some_defaults(tmp_path, workspace, vocab_files):
    """A levels file naming H keeps its text; L, which it does not name, gets the default."""
    patients = write(tmp_path, "patients.csv", WIDE)
    levels = write(tmp_path, "levels.csv", "code,value,text\nA5,H,severe myalgia\n")
    result = add_site(
        workspace, "siteA", vocab_files["a"], patients=PatientInput(patients, TASK, levels=levels)
    )
    assert result.n_level_texts == 1
    assert level_rows(workspace) == [("A5", "H", "severe myalgia"), ("A5", "L", "muscle pain: L")]


def test_long_patients_get_level_texts_too(tmp_path, workspace, vocab_files):
    events = write(
        tmp_path, "e.csv", "subject_id,code,value\np1,A2,ge65\np1,A1,P\np2,A2,ls5\np2,A1,A\n"
    )
    labels = write(tmp_path, "l.csv", "subject_id,diagnosis\np1,I\np2,R\n")
    result = add_site(
        workspace,
        "siteA",
        vocab_files["a"],
        patients=PatientInput(events, TASK, labels=labels, test_fraction=0.5),
    )
    assert result.n_level_texts == 2
    assert level_rows(workspace) == [
        ("A2", "ge65", "reported fever: ge65"),
        ("A2", "ls5", "reported fever: ls5"),
    ]


def test_study_patients_load_without_a_levels_file(tmp_path, workspace):
    """The study's own files (agegroup ls5/ge6ls65/ge64, temperature grade I) hit this first:
    patients drawn from its target network, written as its files are, load as they are."""
    from harmonize.core.config import DATA_DIR
    from harmonize.datasets.networks import Network

    frame = Network.from_file(DATA_DIR / "networks" / "target.bif").sample(200, random_state=0)
    patients = tmp_path / "study.csv"
    frame.to_csv(patients, index=False)
    codes = [c for c in frame.columns if c != "diagnosis"]
    names = {"agegroup": "Age group", "C0424781": "temperature"}
    vocab = tmp_path / "vocab.csv"
    descriptions = [names.get(c, f"finding {c}") for c in codes]
    pd.DataFrame({"code": codes, "description": descriptions}).to_csv(vocab, index=False)
    result = add_site(workspace, "study", vocab, patients=PatientInput(patients, TASK))
    assert level_rows(workspace, "study") == [
        ("C0424781", "I", "temperature: I"),
        ("agegroup", "ge64", "Age group: ge64"),
        ("agegroup", "ge6ls65", "Age group: ge6ls65"),
        ("agegroup", "ls5", "Age group: ls5"),
    ]
    assert result.n_level_texts == 4


# --- through the CLI -----------------------------------------------------------------------


@pytest.fixture
def with_site(tmp_path, workspace, vocab_files):
    """A workspace holding siteA with a task, and siteB without."""
    patients = write(tmp_path, "good.csv", WIDE)
    levels = write(tmp_path, "levels.csv", "code,value,text\nA5,H,high\nA5,L,low\n")
    add_site(
        workspace, "siteA", vocab_files["a"], patients=PatientInput(patients, TASK, levels=levels)
    )
    add_site(workspace, "siteB", vocab_files["b"])
    return workspace


def test_cli_add_site_with_patients(runner, tmp_path, workspace, vocab_files):
    patients = write(tmp_path, "p.csv", "B1,B2,diagnosis\nP,A,I\nA,A,R\nP,P,I\nA,M,R\nA,A,R\n")
    result = run(
        runner,
        workspace,
        "add-site",
        "siteB",
        "--vocab",
        str(vocab_files["b"]),
        "--patients",
        str(patients),
        "--label",
        "diagnosis=I",
        "--test-fraction",
        "0.5",
    )
    # 2 I -> 1 test; 3 R -> round(1.5) = 2 test.
    assert (result.exit_code, result.output) == (
        0,
        "added site 'siteB': 4 concepts and 10 events; 5 patients (2 train, 3 test), "
        "task diagnosis=I\n",
    )


def test_cli_add_site_says_how_many_level_texts_it_made(runner, tmp_path, workspace, vocab_files):
    patients = write(tmp_path, "p.csv", WIDE)
    args = ["add-site", "siteA", "--vocab", str(vocab_files["a"]), "--patients", str(patients)]
    result = run(runner, workspace, *args, "--label", "diagnosis=I", "--test-fraction", "0.5")
    assert (result.exit_code, result.output) == (
        0,
        "added site 'siteA': 5 concepts and 20 events; 10 patients (5 train, 5 test), "
        "task diagnosis=I; 2 level texts made as '<description>: <value>'\n",
    )


@pytest.mark.parametrize(
    ("site", "text", "extra", "message"),
    [
        (
            "siteA",
            "A1,Z9,diagnosis\nP,P,I\nA,A,R\n",
            [],
            "{p}: column 'Z9' is not a code of the site's vocabulary",
        ),
        (
            "siteC",
            "A1,diagnosis\nP,R\nA,R\n",
            [],
            "{p}: label column 'diagnosis' has no 'I' rows: a binary task needs both classes",
        ),
        (
            "siteA",
            "A1,A5,diagnosis\nP,X,I\nA,A,R\n",
            ["--strict-levels"],
            "{p}: column 'A5' has value 'X', which is not P, A or M; declare its levels with "
            "--levels FILE (code,value,text)",
        ),
        (
            "siteA",
            "A1,A5,diagnosis\nP,H,I\na,A,R\n",
            [],
            "{p}: column 'A1' has value 'a', which is not P, A or M; write P, A or M (upper "
            "case) for present, absent or missing",
        ),
        (
            "siteC",
            "A1,diagnosis\nP,I\nA,R\n",
            ["--test-fraction", "1"],
            "--test-fraction must be between 0 and 1, got 1.0",
        ),
    ],
)
def test_cli_bad_patients_leave_the_workspace_unchanged(
    runner, tmp_path, with_site, vocab_files, site, text, extra, message
):
    bad = write(tmp_path, "bad.csv", text)
    before = snapshot(with_site)
    result = run(
        runner,
        with_site,
        "add-site",
        site,
        "--vocab",
        str(vocab_files["a"]),
        "--patients",
        str(bad),
        "--label",
        "diagnosis=I",
        *extra,
        "--replace",
    )
    assert result.exit_code == 1
    assert result.output == "Error: " + message.format(p=bad) + "\n"
    assert snapshot(with_site) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patients", "{p}"], "--patients needs --label COLUMN=VALUE (e.g. diagnosis=I)"),
        (
            ["--label", "diagnosis=I"],
            "--test-patients, --labels, --label, --levels and --strict-levels need --patients",
        ),
        (
            ["--strict-levels"],
            "--test-patients, --labels, --label, --levels and --strict-levels need --patients",
        ),
        (
            ["--patients", "{p}", "--label", "diagnosis"],
            "--label must look like COLUMN=VALUE (e.g. diagnosis=I), got 'diagnosis'",
        ),
        (
            ["--patients", "{p}", "--label", "diagnosis=I", "--events", "{p}"],
            "give either --events or --patients, not both",
        ),
    ],
)
def test_cli_patient_option_errors(runner, tmp_path, with_site, vocab_files, args, message):
    patients = write(tmp_path, "p.csv", "A1,diagnosis\nP,I\nA,R\n")
    before = snapshot(with_site)
    result = run(
        runner,
        with_site,
        "add-site",
        "siteC",
        "--vocab",
        str(vocab_files["a"]),
        *[a.format(p=patients) for a in args],
    )
    assert (result.exit_code, result.output) == (1, f"Error: {message}\n")
    assert snapshot(with_site) == before
