"""One shape for results: a dataclass; where a table is natural, ``to_frame()`` and ``rows()``.

A result class that holds a table implements ``to_frame()``; :class:`TableResult` derives
``rows()`` from it, with missing values as ``None`` rather than ``nan``.

>>> from dataclasses import dataclass
>>> import pandas as pd
>>> @dataclass
... class Scores(TableResult):
...     table: pd.DataFrame
...     def to_frame(self) -> pd.DataFrame:
...         return self.table
>>> Scores(pd.DataFrame({"code": ["A1", "A2"], "score": [0.5, None]})).rows()
[{'code': 'A1', 'score': 0.5}, {'code': 'A2', 'score': None}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class TableResult:
    """Mixin for result dataclasses whose content is a table."""

    def to_frame(self) -> pd.DataFrame:
        """The result as a DataFrame (a copy the caller may change)."""
        raise NotImplementedError

    def rows(self) -> list[dict[str, Any]]:
        """The result as a list of row dicts; missing values are ``None``."""
        frame = self.to_frame()
        frame = frame.astype(object).where(frame.notna(), None)
        return frame.to_dict("records")
