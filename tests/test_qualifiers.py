"""Negation, specificity and laterality read from concept texts (harmonize.qualifiers)."""

import pytest

from harmonize.mapping.rerank.qualifiers import conflicts, qualifiers


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # The negated scope runs to the comma: obstruction is asserted, gangrene negated.
        (
            "Femoral hernia with obstruction, without gangrene",
            "Femoral hernia with obstruction",
            (0, 0, 0),
        ),
        (
            "Femoral hernia with obstruction, without gangrene",
            "Femoral hernia with gangrene",
            (1, 0, 0),
        ),
        # "or" stays in the scope; "with" closes it.
        (
            "Hernia without obstruction or gangrene",
            "Hernia with obstruction and gangrene",
            (2, 0, 0),
        ),
        (
            "Migraine, intractable, without status migrainosus",
            "Migraine, without mention of intractable migraine with status migrainosus",
            (3, 0, 0),
        ),
        # A word the text both asserts and negates counts for neither.
        (
            "Migraine, not intractable, without status migrainosus",
            "Migraine, without mention of intractable migraine"
            " without mention of status migrainosus",
            (0, 0, 0),
        ),
        ("Dyspnea", "Not dyspnea", (1, 0, 0)),
        ("Reported fever", "No reported fever", (2, 0, 0)),
        # Residual against unspecified categories; "NEC" and "NOS" are not negations.
        ("Dyschromia, unspecified", "Other dyschromia", (0, 1, 0)),
        ("Dyschromia NOS", "Dyschromia, not elsewhere classified", (0, 1, 0)),
        ("Dyschromia NOS", "Dyschromia, unspecified", (0, 0, 0)),
        ("Other and unspecified dyschromia", "Other dyschromia", (0, 0, 0)),
        # "non-" negates the next word only; "NEC" alone is not "not elsewhere classified".
        ("Non-displaced fracture of left femur", "Displaced fracture of left femur", (1, 0, 0)),
        ("Non-pressure chronic ulcer of left thigh", "Chronic ulcer of left thigh", (0, 0, 0)),
        ("Necrotizing enterocolitis (NEC)", "Other necrotizing enterocolitis", (0, 0, 0)),
        ("Hernia w/o obstruction", "Hernia with obstruction", (1, 0, 0)),
        # "not specified as" negates what follows; "site not specified" is unspecified.
        ("Femoral hernia, not specified as recurrent", "Femoral hernia, recurrent", (1, 0, 0)),
        ("Fever, site not specified", "Other specified fever", (0, 1, 0)),
        # Sides conflict only when both texts name one.
        ("Pain in left knee", "Pain in right knee", (0, 0, 1)),
        ("Pain in left knee", "Pain in knee", (0, 0, 0)),
        ("Pain in knees, bilateral", "Pain in left knee", (0, 0, 1)),
        ("Pain in left and right knee", "Pain in knees, bilateral", (0, 0, 0)),
        # "Absence of" is a finding, not a negation, and its side still counts.
        ("Acquired absence of left leg", "Acquired absence of right leg", (0, 0, 1)),
    ],
)
def test_conflicts_worked_by_hand(a, b, expected):
    assert conflicts(a, b) == expected
    # The comparison is symmetric.
    assert conflicts(b, a) == expected


def test_parse_keeps_plurals_together_and_drops_function_words():
    q = qualifiers("Open wounds of the fingers without mention of complications, left")
    assert q.asserted == {"open", "wound", "finger", "left"}
    assert q.negated == {"complication"}
    assert q.sides == {"left"} and not q.residual and not q.unspecified
