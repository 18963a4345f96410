"""Rendering result frames for the terminal: table, CSV or JSON.

>>> print(render(pd.DataFrame({"code": ["C1"], "score": [0.91234]}), "csv"), end="")
code,score
C1,0.91234
"""

from __future__ import annotations

import json

import pandas as pd
from tabulate import tabulate

FORMATS = ("table", "csv", "json")


def render(frame: pd.DataFrame, fmt: str = "table", floatfmt: str = ".3f") -> str:
    """``frame`` as an aligned text table, CSV, or a JSON list of row objects."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if frame.empty:
        return "(no rows)\n"
    # Row lists of Python objects keep integer columns integers (a frame's .values would upcast).
    rows = frame.astype(object).values.tolist()
    # Codes like 4107731 are text: keep them left-aligned text, not numbers.
    text_columns = [
        i for i, c in enumerate(frame.columns) if not pd.api.types.is_numeric_dtype(frame[c])
    ]
    return (
        tabulate(
            rows,
            headers=list(map(str, frame.columns)),
            tablefmt="simple",
            floatfmt=floatfmt,
            disable_numparse=text_columns or False,
        )
        + "\n"
    )


def shorten(text: object, width: int = 40) -> object:
    """Long descriptions cut to ``width`` characters with an ellipsis, for terminal tables."""
    if isinstance(text, str) and len(text) > width:
        return text[: width - 1] + "…"
    return text
