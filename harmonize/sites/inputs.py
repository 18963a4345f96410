"""What a new site is read from, checked as a whole, and stored with one :func:`add_site` call.

A site comes from exactly one of a vocabulary file, an OMOP CDM, a MEDS dataset or an Athena
vocabulary download. Events or patients go only with a vocabulary file (OMOP and MEDS bring
their own events, an Athena vocabulary has none), the patient options only with patients and
the vocabulary filters only with Athena.

>>> SiteInputs(vocab=Path("a.csv"), meds=Path("meds/")).check()
Traceback (most recent call last):
harmonize.core.errors.InputError: give exactly one of vocab FILE, omop PATH, meds DIR or athena DIR
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harmonize.core.config import RANDOM_STATE
from harmonize.core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from harmonize.core.workspace import Workspace
    from harmonize.sites.athena import AthenaAdded
    from harmonize.sites.registry import AddSiteResult, PatientInput

SOURCES = ("vocab", "omop", "meds", "athena")
ATHENA_FILTERS = ("vocabularies", "domains", "concept_classes", "standard", "include_invalid")


@dataclass(frozen=True)
class SiteInputs:
    """The files of one site. ``omop_codes`` is ``standard`` (concept_ids, the default) or
    ``source`` (the local ``*_source_value`` codes); ``label`` is ``COLUMN=VALUE``; ``seed`` and
    ``test_fraction`` make the hold-out when no ``test_patients`` are given."""

    vocab: Path | None = None
    omop: Path | None = None
    omop_codes: str | None = None
    meds: Path | None = None
    events: Path | None = None
    patients: Path | None = None
    test_patients: Path | None = None
    labels: Path | None = None
    label: str | None = None
    levels: Path | None = None
    test_fraction: float = 0.2
    seed: int = RANDOM_STATE
    strict_levels: bool = False
    athena: Path | None = None
    vocabularies: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    concept_classes: tuple[str, ...] = ()
    standard: bool | None = None
    include_invalid: bool | None = None

    def check(self) -> None:
        """Refuses inputs that do not go together, before any file is read."""
        given = [name for name in SOURCES if getattr(self, name)]
        if len(given) != 1:
            raise InputError(
                "give exactly one of {vocab} FILE, {omop} PATH, {meds} DIR or {athena} DIR",
                params=SOURCES,
            )
        used = [f for f in ATHENA_FILTERS if getattr(self, f) not in ((), None)]
        if used and not self.athena:
            raise InputError(
                f"{{{used[0]}}} filters an Athena vocabulary: it needs {{athena}} DIR",
                params=(used[0], "athena"),
            )
        if (self.omop or self.meds or self.athena) and (
            self.events is not None or self.patients is not None
        ):
            raise InputError(
                f"{{{given[0]}}} brings its own events: drop {{events}}/{{patients}}",
                params=(given[0], "events", "patients"),
            )
        if self.omop_codes is not None and not self.omop:
            raise InputError("{omop_codes} needs {omop}", params=("omop_codes", "omop"))
        if self.omop or self.meds or self.athena:
            return
        if self.patients is not None and self.label is None:
            raise InputError(
                "{patients} needs {label} COLUMN=VALUE (e.g. diagnosis=I)",
                params=("patients", "label"),
            )
        extras = (self.test_patients, self.labels, self.label, self.levels)
        if self.patients is None and (any(x is not None for x in extras) or self.strict_levels):
            raise InputError(
                "{test_patients}, {labels}, {label}, {levels} and {strict_levels} need {patients}",
                params=("test_patients", "labels", "label", "levels", "strict_levels", "patients"),
            )

    def patient_input(self) -> PatientInput | None:
        """The patients to read, or None without ``patients``."""
        from harmonize.sites.patients import LabelSpec
        from harmonize.sites.registry import PatientInput

        if self.patients is None or self.label is None:
            return None
        return PatientInput(
            self.patients,
            LabelSpec.parse(self.label),
            test_patients=self.test_patients,
            labels=self.labels,
            levels=self.levels,
            test_fraction=self.test_fraction,
            random_state=self.seed,
            strict_levels=self.strict_levels,
        )


@dataclass(frozen=True)
class SiteAdded:
    """What :func:`add_site_from` stored; ``skipped`` counts OMOP events left out for a blank
    source value (None unless the site uses OMOP source codes); ``warnings`` name what the
    reader skipped as malformed (an OMOP table)."""

    added: AddSiteResult | AthenaAdded
    skipped: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.skipped is None:
            return self.added.message
        return f"{self.added.message} ({self.skipped} events without a source value left out)"


def add_site_from(ws: Workspace, name: str, inputs: SiteInputs, replace: bool = False) -> SiteAdded:
    """Checks ``inputs``, reads them and stores site ``name`` (replacing it only if ``replace``).

    >>> import tempfile
    >>> from harmonize.core.workspace import Workspace
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("code,description\\nA1,dry cough\\nA2,fever\\n")
    >>> add_site_from(Workspace(folder), "siteA", SiteInputs(vocab=folder / "a.csv")).message
    "added site 'siteA': 2 concepts"
    """
    from harmonize.sites.registry import add_site

    inputs.check()
    if inputs.athena:
        from harmonize.sites.athena import AthenaFilters, add_athena_site

        filters = AthenaFilters(
            tuple(inputs.vocabularies),
            tuple(inputs.domains),
            tuple(inputs.concept_classes),
            standard=inputs.standard is not False,
            include_invalid=bool(inputs.include_invalid),
        )
        return SiteAdded(add_athena_site(ws, name, inputs.athena, filters, replace=replace))
    if inputs.vocab:
        result = add_site(
            ws,
            name,
            inputs.vocab,
            events_path=inputs.events,
            replace=replace,
            patients=inputs.patient_input(),
        )
        return SiteAdded(result)
    vocab, events, skipped, warnings = _read_dataset(inputs)
    added = add_site(ws, name, None, vocab=vocab, events=events, replace=replace)
    return SiteAdded(added, skipped, warnings)


def _read_dataset(
    inputs: SiteInputs,
) -> tuple[pd.DataFrame, pd.DataFrame, int | None, tuple[str, ...]]:
    """(vocabulary, events, skipped, warnings) of the OMOP CDM or MEDS dataset ``inputs``
    names."""
    from harmonize.core.timing import stage

    if inputs.omop:
        from harmonize.sites.omop import read_omop_site

        codes = "source" if inputs.omop_codes == "source" else "standard"
        with stage("read omop"):
            site = read_omop_site(inputs.omop, codes)
        skipped = site.skipped if codes == "source" else None
        return site.vocab, site.events, skipped, site.warnings
    from harmonize.sites.meds import read_meds

    with stage("read meds"):
        vocab, events = read_meds(inputs.meds)
    return vocab, events, None, ()
