"""The options commands share, each defined once, and the old spellings kept for a release.

Choice lists that the library owns (output formats, predicates, scenarios) are read from it only
when an option is used or its help is shown (:class:`LazyChoice`), so that defining the
commands, and ``harmonize --help``, imports neither pandas nor the library's heavy modules.

>>> import click
>>> from click.testing import CliRunner
>>> @click.command()
... @source_option()
... @format_option()
... def show(source, fmt):
...     click.echo(f"{source} as {fmt}")
>>> CliRunner().invoke(show, ["--source", "siteB", "--format", "csv"]).output
'siteB as csv\\n'
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from harmonize.core.config import (
    DEFAULT_DEVICE,
    DEFAULT_K,
    DEFAULT_MODEL,
    DEVICES,
    KNOWN_TRAIN_MAX,
    PREVIEW_ROWS,
    RANDOM_STATE,
)

F = TypeVar("F", bound=Callable[..., Any])

MODEL_HELP = (
    "minilm, minilm-int8 (int8, CPU, ~2.5x faster), minilm-adapted (once built by "
    "adapt-encoder), lexical, hf-cls:PATH, hf-mean:PATH, precomputed:FILE, or a folder."
)


class LazyChoice(click.Choice):
    """A :class:`click.Choice` over the library constant ``module.name`` (a sequence of
    strings), imported once, when the choices are first needed."""

    def __init__(self, module: str, name: str, case_sensitive: bool = True) -> None:
        # No super().__init__: it would read the choices now.
        self._where = (module, name)
        self._choices: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._choices is None:
            module, name = self._where
            self._choices = tuple(getattr(importlib.import_module(module), name))
        return self._choices


# One choice list per kind of output: a result printed on the terminal, mappings written for
# other tools, events written for other tools.
FORMAT_KINDS: dict[str, tuple[tuple[str, str], dict[str, Any]]] = {
    "table": (
        ("harmonize.core.render", "FORMATS"),
        {"default": "table", "show_default": True, "help": "How to print the result."},
    ),
    "mappings": (
        ("harmonize.mapping.export", "EXPORT_FORMATS"),
        {
            "required": True,
            "help": "sssom (TSV), fhir (R4 ConceptMap JSON), omop-stcm (CSV), usagi (CSV).",
        },
    ),
    "events": (
        ("harmonize.mapping.export", "EVENT_FORMATS"),
        {"default": "meds", "show_default": True, "help": "A MEDS folder or one Parquet file."},
    ),
}


def format_option(kind: str = "table") -> Callable[[F], F]:
    """``--format`` for one kind of output (:data:`FORMAT_KINDS`); the value arrives as ``fmt``."""
    (module, name), attrs = FORMAT_KINDS[kind]
    return click.option("--format", "fmt", type=LazyChoice(module, name), **attrs)


def source_option(help: str = "Site whose concepts are mapped.") -> Callable[[F], F]:
    return click.option("--source", required=True, help=help)


def target_option(help: str = "Site whose concepts they are mapped onto.") -> Callable[[F], F]:
    return click.option("--target", required=True, help=help)


def site_option(help: str) -> Callable[[F], F]:
    return click.option("--site", required=True, help=help)


def model_option(
    name: str = "model",
    help: str = MODEL_HELP,
    default: str | tuple[str, ...] = DEFAULT_MODEL,
    multiple: bool = False,
) -> Callable[[F], F]:
    """``--model``, the embedding model; ``name`` is the Python name the library calls it."""
    return click.option(
        "--model", name, default=default, show_default=True, multiple=multiple, help=help
    )


def device_option(default: str = DEFAULT_DEVICE) -> Callable[[F], F]:
    return click.option(
        "--device",
        type=click.Choice(DEVICES),
        default=default,
        show_default=True,
        help="Where to embed and train: auto picks a GPU when there is one.",
    )


def seed_option(help: str = "Random seed.") -> Callable[[F], F]:
    return click.option("--seed", default=RANDOM_STATE, show_default=True, type=int, help=help)


def output_option(help: str, required: bool = False, dir_okay: bool = True) -> Callable[[F], F]:
    """``-o/--output``, everywhere a command writes a file or folder."""
    return click.option(
        "-o",
        "--output",
        required=required,
        type=click.Path(dir_okay=dir_okay, path_type=Path),
        help=help,
    )


def k_option(default: int = DEFAULT_K) -> Callable[[F], F]:
    return click.option(
        "--k", default=default, show_default=True, type=int, help="Candidates kept per concept."
    )


def gold_option(help: str, required: bool = True) -> Callable[[F], F]:
    return click.option("--gold", required=required, type=click.Path(path_type=Path), help=help)


def limit_option(help: str) -> Callable[[F], F]:
    return click.option("--limit", default=PREVIEW_ROWS, show_default=True, type=int, help=help)


reranker_concepts_option = click.option(
    "--reranker-concepts",
    type=int,
    default=None,
    help=f"With --known: how many known concepts (a seeded sample) the reranker learns from "
    f"[default: {KNOWN_TRAIN_MAX}]. "
    "More is better and slower: on 34,122 held-out ICD-10-CM codes 12,000 / 30,000 gave top-1 "
    "0.927 / 0.938, in 2.2 / 3.5 minutes on 2 CPU cores.",
)


def note(text: str) -> None:
    """A remark for the user that is not part of the result: on stderr, after ``Note:``."""
    click.echo(f"Note: {text}", err=True)


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user set option ``name`` (on the command line or through the environment)."""
    return ctx.get_parameter_source(name) in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )


def old_flag(flag: str, name: str, type: Any = None) -> Callable[[F], F]:
    """A hidden option under an old spelling; the command passes its value to :func:`take_old`."""
    return click.option(flag, name, type=type, default=None, hidden=True)


def take_old(old: str, new: str, old_value: Any, value: Any, new_given: bool) -> Any:
    """The value of option ``new``, taken from its old spelling ``old`` when that was used."""
    if old_value is None:
        return value
    if new_given:
        raise click.UsageError(f"{old} is the old name of {new}: give only {new}")
    note(f"{old} is now {new}")
    return old_value


def renamed(old: str, name: str) -> Callable[[F], F]:
    """Keep ``old`` working for one release as a hidden alias of option ``name`` (declared
    below this decorator); using it prints what to use instead."""

    def decorate(f: F) -> F:
        option = next(p for p in getattr(f, "__click_params__", ()) if p.name == name)
        # Either spelling satisfies a required option, so the check moves into the command;
        # --help still says it is required.
        required, option.required = option.required, False
        if required:
            option.help = f"{option.help}  [required]"
        hidden = f"{name}_old_{old.lstrip('-').replace('-', '_')}"
        flag = next(o for o in option.opts if o.startswith("--"))

        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            value = take_old(old, flag, kwargs.pop(hidden), kwargs[name], given(ctx, name))
            if value is None and required:
                raise click.MissingParameter(ctx=ctx, param=option)
            return f(*args, **{**kwargs, name: value})

        return old_flag(old, hidden, option.type)(command)  # type: ignore[return-value]

    return decorate
