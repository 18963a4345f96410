"""Bayesian networks in XMLBIF 0.3: parsing and seeded forward sampling.

The demo's patients are drawn from the influenza study's networks this way. A CPT row is one
configuration of the parents (the first parent varies slowest, the last fastest, as XMLBIF
writes them) and holds the probabilities of the variable's outcomes.

>>> net = Network.from_xml('''<BIF VERSION="0.3"><NETWORK><NAME>n</NAME>
... <VARIABLE TYPE="nature"><NAME>a</NAME><OUTCOME>y</OUTCOME><OUTCOME>n</OUTCOME></VARIABLE>
... <DEFINITION><FOR>a</FOR><TABLE>1.0 0.0</TABLE></DEFINITION></NETWORK></BIF>''')
>>> net.sample(3, random_state=0)["a"].tolist()
['y', 'y', 'y']
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harmonize.core.errors import InputError


@dataclass(frozen=True)
class Variable:
    name: str
    outcomes: tuple[str, ...]
    parents: tuple[str, ...]
    cpt: np.ndarray  # shape (n_parent_configurations, n_outcomes), rows sum to 1


class Network:
    """A discrete Bayesian network: variables in topological order, each with its CPT."""

    def __init__(self, name: str, variables: list[Variable]):
        self.name = name
        self.variables = _topological(variables)
        self.by_name = {v.name: v for v in self.variables}

    @classmethod
    def from_file(cls, path: str | Path) -> Network:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read network {path}: {exc}") from exc
        return cls.from_xml(text, source=str(path))

    @classmethod
    def from_xml(cls, text: str, source: str = "<string>") -> Network:
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise InputError(f"{source} is not valid XMLBIF: {exc}") from exc
        network = root.find("NETWORK")
        if network is None:
            raise InputError(f"{source} has no <NETWORK> element")
        outcomes = {
            _required(v, "NAME", source): tuple(
                (o.text or "").strip() for o in v.findall("OUTCOME")
            )
            for v in network.findall("VARIABLE")
        }
        variables = []
        for definition in network.findall("DEFINITION"):
            name = _required(definition, "FOR", source)
            parents = tuple((g.text or "").strip() for g in definition.findall("GIVEN"))
            for p in (name, *parents):
                if p not in outcomes:
                    raise InputError(f"{source}: definition uses undeclared variable '{p}'")
            if any(v.name == name for v in variables):
                raise InputError(f"{source}: variable '{name}' has more than one <DEFINITION>")
            try:
                values = np.array(_required(definition, "TABLE", source).split(), dtype=np.float64)
            except ValueError as exc:
                raise InputError(f"{source}: table of '{name}' holds a non-number: {exc}") from exc
            n_configs = int(np.prod([len(outcomes[p]) for p in parents])) if parents else 1
            n_out = len(outcomes[name])
            if values.size != n_configs * n_out:
                raise InputError(
                    f"{source}: table of '{name}' has {values.size} values, "
                    f"expected {n_configs} x {n_out}"
                )
            cpt = values.reshape(n_configs, n_out)
            if (cpt < 0).any() or not np.isfinite(cpt).all():
                raise InputError(f"{source}: table of '{name}' holds a negative or invalid number")
            if not np.allclose(cpt.sum(axis=1), 1.0, atol=1e-3):
                raise InputError(f"{source}: a row of the table of '{name}' does not sum to 1")
            variables.append(
                Variable(name, outcomes[name], parents, cpt / cpt.sum(1, keepdims=True))
            )
        undefined = set(outcomes) - {v.name for v in variables}
        if undefined:
            raise InputError(f"{source}: no <DEFINITION> for {sorted(undefined)[0]}")
        return cls(network.findtext("NAME") or "network", variables)

    def sample(self, n: int, random_state: int | None = None) -> pd.DataFrame:
        """``n`` independent joint samples, one column per variable, outcome names as values."""
        rng = np.random.default_rng(random_state)
        codes: dict[str, np.ndarray] = {}
        for var in self.variables:
            config = np.zeros(n, dtype=np.int64)
            for parent in var.parents:
                config = config * len(self.by_name[parent].outcomes) + codes[parent]
            cumulative = np.cumsum(var.cpt[config], axis=1)
            draws = rng.random(n)[:, None]
            # First outcome whose cumulative probability exceeds the draw; clip guards rounding.
            codes[var.name] = np.minimum((draws >= cumulative).sum(axis=1), len(var.outcomes) - 1)
        return pd.DataFrame(
            {v.name: np.asarray(v.outcomes, dtype=object)[codes[v.name]] for v in self.variables}
        )


def _required(element: ET.Element, tag: str, source: str) -> str:
    """The stripped text of a child element that XMLBIF requires, or an InputError."""
    text = element.findtext(tag)
    if text is None or not text.strip():
        raise InputError(f"{source}: a <{element.tag}> element has no <{tag}>")
    return text.strip()


def _topological(variables: list[Variable]) -> list[Variable]:
    by_name = {v.name: v for v in variables}
    ordered: list[Variable] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise InputError(f"the network has a cycle through '{name}'")
        state[name] = 1
        for parent in by_name[name].parents:
            visit(parent)
        state[name] = 2
        ordered.append(by_name[name])

    for v in variables:
        visit(v.name)
    return ordered
