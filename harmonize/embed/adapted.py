"""``minilm-adapted``: all-MiniLM-L6-v2 fine-tuned once per machine on public synonym pairs
(built by ``harmonize adapt-encoder``, :mod:`harmonize.mapping.adapt`) and kept under the
model cache (``~/.cache/harmonize/models`` or ``$HARMONIZE_MODEL_CACHE``), beside
``minilm-int8``. Its folder name carries the recipe and the base weights' fingerprint, so a
new recipe or new base weights need a new build.

>>> import os, tempfile
>>> os.environ["HARMONIZE_MODEL_CACHE"] = tempfile.mkdtemp()
>>> adapted_encoder()  # doctest: +ELLIPSIS
Traceback (most recent call last):
harmonize.core.errors.ModelError: model 'minilm-adapted' is not built on this machine: run ...
>>> del os.environ["HARMONIZE_MODEL_CACHE"]
"""

from __future__ import annotations

from pathlib import Path

from harmonize.core.config import ADAPT_RECIPE
from harmonize.core.errors import ModelError
from harmonize.embed.base import dir_fingerprint
from harmonize.embed.encoders import SentenceTransformerEncoder

SPEC = "minilm-adapted"


def adapted_folder() -> Path:
    """Where this machine's ``minilm-adapted`` is (or would be) kept."""
    from harmonize.embed.quantized import model_cache_root
    from harmonize.embed.registry import minilm_path

    return model_cache_root() / f"{SPEC}-{ADAPT_RECIPE}-{dir_fingerprint(minilm_path())}"


def adapted_encoder() -> SentenceTransformerEncoder:
    """The built model, or a ModelError naming the command that builds it."""
    folder = adapted_folder()
    if not (folder / "modules.json").is_file():
        raise ModelError(
            f"model '{SPEC}' is not built on this machine: run 'harmonize adapt-encoder' once "
            f"(about 8 minutes on 2 CPU cores; it is kept in {folder.parent})"
        )
    return SentenceTransformerEncoder(SPEC, folder)
