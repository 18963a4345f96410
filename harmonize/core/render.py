"""Rendering result frames for the terminal: table, CSV or JSON.

>>> import pandas as pd
>>> print(render(pd.DataFrame({"code": ["C1"], "score": [0.91234]}), "csv"), end="")
code,score
C1,0.91234
>>> print(render(pd.DataFrame({"code": ["C1", "C2"], "score": [0.5, None]})), end="")
code      score
------  -------
C1        0.500
C2        -
>>> print(render_rows([{"site": "a", "concepts": 12}], "table"), end="")
site      concepts
------  ----------
a               12
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json")


def render(frame: pd.DataFrame, fmt: str = "table", floatfmt: str = ".3f") -> str:
    """``frame`` as an aligned text table, CSV, or a JSON list of row objects."""
    import pandas as pd

    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if frame.empty:
        return "(no rows)\n"
    # Row lists of Python objects keep integer columns integers (a frame's .values would upcast).
    # Missing values print as '-', never 'nan' (tabulate keeps the column's number format).
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    # Codes like 4107731 are text: keep them left-aligned text, not numbers.
    text_columns = [
        i for i, c in enumerate(frame.columns) if not pd.api.types.is_numeric_dtype(frame[c])
    ]
    return _aligned(list(map(str, frame.columns)), rows, text_columns, floatfmt)


def _aligned(
    names: list[str], rows: list[list[Any]], text_columns: list[int], floatfmt: str
) -> str:
    """The terminal table both renderers print: text columns never parsed as numbers, missing
    values as '-'."""
    return (
        tabulate(
            rows,
            headers=names,
            tablefmt="simple",
            floatfmt=floatfmt,
            disable_numparse=text_columns or False,
            missingval="-",
        )
        + "\n"
    )


def shorten(text: object, width: int = 40) -> object:
    """Long descriptions cut to ``width`` characters with an ellipsis, for terminal tables."""
    if isinstance(text, str) and len(text) > width:
        return text[: width - 1] + "…"
    return text


def render_rows(
    rows: Sequence[dict[str, Any]],
    fmt: str = "table",
    columns: Sequence[str] | None = None,
    floatfmt: str = ".3f",
) -> str:
    """Row dicts of plain Python values (str, int, float, None) rendered as :func:`render`
    renders a frame, without pandas: for commands that must start quickly."""
    names = list(columns if columns is not None else (rows[0] if rows else []))
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([["" if r[c] is None else r[c] for c in names] for r in rows])
        return out.getvalue()
    if fmt == "json":
        return json.dumps([{c: r[c] for c in names} for r in rows], indent=2) + "\n"
    if not rows:
        return "(no rows)\n"
    text_columns = [i for i, c in enumerate(names) if any(isinstance(r[c], str) for r in rows)]
    return _aligned(names, [[r[c] for c in names] for r in rows], text_columns, floatfmt)
