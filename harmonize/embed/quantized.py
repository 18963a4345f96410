"""``minilm-int8``: all-MiniLM-L6-v2 as an int8 ONNX Runtime model for fast CPU encoding.

The model is made once per machine from the local fp32 weights (no network) and kept under
``~/.cache/harmonize/models`` (or ``$HARMONIZE_MODEL_CACHE``):

1. SmoothQuant (Xiao et al. 2023): the input of every Linear layer is divided per channel by
   ``s = amax(x)^alpha / amax(w)^(1-alpha)`` and the weight multiplied by it, an exact fp32
   rewrite that moves activation outliers into the weights (``amax(x)`` is calibrated on
   fixed clinical descriptions: the demo's and seeded ICD-9/ICD-10 samples);
2. export to ONNX; dynamic int8 quantisation with per-channel weights: signed int8 for the
   feed-forward output layers, unsigned (no AVX2 ``vpmaddubsw`` saturation) for the rest;
3. an agreement gate: on held-out descriptions its vectors must have cosine >= 0.99 with the
   fp32 model for every text and give the same nearest neighbour for >= 98 % of 300 ICD-10-CM
   queries mapped onto 1,300 ICD-9-CM descriptions. A model that fails is refused.

It always runs on the CPU, in length-sorted batches spread over the cores. Its vectors
differ slightly from ``minilm``'s, so it has its own fingerprint, cache file and indexes.
Activation scales are set per batch, so a text's vector depends a little on its batch-mates
(cosine >= 0.99 either way); near ties between two candidates can flip.

>>> QuantizedEncoder.__name__
'QuantizedEncoder'
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from harmonize.core.config import ENCODE_BATCH_SIZE
from harmonize.core.errors import ModelError
from harmonize.embed.base import dir_fingerprint, l2_normalize, quiet_transformers
from harmonize.embed.quantized_gate import (
    MIN_COSINE,
    MIN_TOP1_AGREEMENT,
    agreement,
    agrees,
    calibration_texts,
)

RECIPE = "smoothquant0.9-u8-ffn2s8-v1"
SMOOTH_ALPHA = 0.9
MODEL_CACHE_ENV = "HARMONIZE_MODEL_CACHE"
ONNX_FILE = "model.onnx"
META_FILE = "meta.json"


def model_cache_root() -> Path:
    """Where converted models are kept: ``$HARMONIZE_MODEL_CACHE`` or ~/.cache/harmonize/models."""
    env = os.environ.get(MODEL_CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "harmonize" / "models"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter and quantiser warn about things that do not concern users."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _smooth(bert, tokenizer, texts: list[str], alpha: float, max_length: int):
    """A copy of ``bert`` whose Linear inputs are scaled per channel (SmoothQuant), same outputs."""
    import torch

    class Smoothed(torch.nn.Module):
        """``linear(x / s)`` with the weight pre-multiplied by ``s``: equal to ``linear(x)``."""

        def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor):
            super().__init__()
            self.register_buffer("inverse", (1.0 / scale).float())
            self.linear = torch.nn.Linear(linear.in_features, linear.out_features)
            with torch.no_grad():
                self.linear.weight.copy_(linear.weight * scale[None, :])
                self.linear.bias.copy_(linear.bias)

        def forward(self, x):
            return self.linear(x * self.inverse)

    model = copy.deepcopy(bert).eval()
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    amax: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(_module, inputs):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            amax[name] = x if name not in amax else torch.maximum(amax[name], x)

        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in linears.items()]
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                texts[start : start + 64],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            model(**batch)
    for handle in handles:
        handle.remove()
    for name, linear in linears.items():
        w_max = linear.weight.detach().abs().amax(0).clamp(min=1e-5)
        scale = amax[name].clamp(min=1e-5) ** alpha / w_max ** (1 - alpha)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, Smoothed(linear, scale))
    return model


def _export(model, tokenizer, path: Path) -> list[str]:
    """ONNX export of a BERT-style encoder: inputs -> last hidden state, dynamic batch/length."""
    import torch

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer(["a"])]

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    sample = tokenizer(
        ["a short text", "another one, a bit longer"], padding=True, return_tensors="pt"
    )
    torch.onnx.export(
        Wrapper(model),
        tuple(sample[n] for n in names),
        str(path),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    return names


def _quantize(fp32: Path, out: Path, ffn_in: int, work: Path) -> None:
    """Per-channel dynamic int8: s8 weights for MatMuls reading ``ffn_in`` features, u8 else."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32)).graph
    shapes = {i.name: numpy_helper.to_array(i).shape for i in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    weighted = [n for n in matmuls if any(len(shapes.get(i, ())) == 2 for i in n.input)]
    ffn2 = {n.name for n in weighted if any(shapes.get(i, (0,))[0] == ffn_in for i in n.input)}
    rest = {n.name for n in weighted} - ffn2
    step = work / "ffn2.onnx"
    options = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    quantize_dynamic(
        str(fp32), str(step), per_channel=True, weight_type=QuantType.QInt8,
        nodes_to_exclude=sorted(rest), extra_options=options,
    )  # fmt: skip
    left = {n.name for n in onnx.load(str(step)).graph.node if n.op_type == "MatMul"}
    quantize_dynamic(
        str(step), str(out), per_channel=True, weight_type=QuantType.QUInt8,
        nodes_to_exclude=sorted(left - rest), extra_options=options,
    )  # fmt: skip


def build_quantized(st_path: Path, folder: Path) -> dict[str, Any]:
    """Converts the sentence-transformers model at ``st_path`` into ``folder/model.onnx`` and
    checks agreement with the fp32 model; returns (and writes) its meta.json."""
    from harmonize.embed.encoders import SentenceTransformerEncoder

    quiet_transformers()
    fp32_encoder = SentenceTransformerEncoder("minilm", st_path)
    st = fp32_encoder._load("cpu")
    modules = [type(m).__name__ for m in st]
    pooling = getattr(st[1], "pooling_mode", None) if len(st) > 1 else None
    if modules[:2] != ["Transformer", "Pooling"] or pooling not in (None, "mean"):
        raise ModelError(f"int8 conversion supports Transformer + mean Pooling, not {modules}")
    bert, tokenizer = st[0].auto_model, st.tokenizer
    max_length = int(st.max_seq_length)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        with _quiet():
            smoothed = _smooth(bert, tokenizer, calibration_texts(), SMOOTH_ALPHA, max_length)
            names = _export(smoothed, tokenizer, work / "fp32.onnx")
            _quantize(work / "fp32.onnx", work / ONNX_FILE, bert.config.intermediate_size, work)
        for extra in ("fp32.onnx", "ffn2.onnx"):
            (work / extra).unlink()
        tokenizer.save_pretrained(str(work / "tokenizer"))
        meta = {
            "recipe": RECIPE,
            "source_fingerprint": dir_fingerprint(st_path),
            "inputs": names,
            "max_length": max_length,
            "dim": int(bert.config.hidden_size),
        }
        (work / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        meta["agreement"] = agreement(fp32_encoder, _Runner(work))
        meta["agrees"] = agrees(meta["agreement"])
        (work / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)  # the whole folder appears at once
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return meta


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _Runner:
    """An ONNX Runtime session over a converted folder: tokenise, run, mean-pool, normalise."""

    def __init__(self, folder: Path):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self.inputs: list[str] = meta["inputs"]
        self.max_length = int(meta["max_length"])
        self.dim = int(meta["dim"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        options = ort.SessionOptions()
        # One thread per session call; batches run in parallel on the cores instead, which
        # scales better than splitting each small matrix product between threads.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def _batch(self, ids: list[list[int]]) -> np.ndarray:
        width = max(len(x) for x in ids)
        tokens = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(tokens)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feed = {"input_ids": tokens, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
        hidden = self.session.run(None, {n: feed[n] for n in self.inputs})[0]
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)

    def encode(
        self, texts: Sequence[str], batch_size: int = ENCODE_BATCH_SIZE, workers: int | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")  # little padding per batch
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def run(rows: np.ndarray) -> None:
            out[rows] = self._batch([ids[i] for i in rows])

        with ThreadPoolExecutor(min(workers or _workers(), len(batches))) as pool:
            list(pool.map(run, batches))
        return l2_normalize(out)


class QuantizedEncoder:
    """``minilm-int8``: the int8 ONNX Runtime conversion of a sentence-transformers folder.

    Built on first use (about a minute on 2 cores) and refused when it disagrees with fp32."""

    cacheable = True

    def __init__(self, spec: str, path: Path):
        self.spec = spec
        self.slug = spec
        self.path = path
        self._runner: _Runner | None = None
        self.workers: int | None = None  # parallel batches; None: one per usable core

    @property
    def fingerprint(self) -> str:
        import onnxruntime as ort

        return f"int8-{RECIPE}-ort{ort.__version__}-{dir_fingerprint(self.path)}"

    @property
    def folder(self) -> Path:
        return model_cache_root() / f"{self.spec}-{self.fingerprint}"

    def _load(self) -> _Runner:
        if self._runner is None:
            meta_path = self.folder / META_FILE
            if meta_path.is_file():
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            else:
                meta = build_quantized(self.path, self.folder)
            if not meta.get("agrees"):
                report = meta.get("agreement", {})
                raise ModelError(
                    f"model {self.spec} does not agree with its fp32 model on this machine "
                    f"({report}; needs cosine >= {MIN_COSINE} per text and top-1 agreement >= "
                    f"{MIN_TOP1_AGREEMENT}). Use the fp32 model, minilm, instead."
                )
            self._runner = _Runner(self.folder)
        return self._runner

    @property
    def dim(self) -> int:
        return self._load().dim

    @property
    def agreement(self) -> dict[str, float]:
        """The agreement measured when the model was built."""
        self._load()
        return json.loads((self.folder / META_FILE).read_text(encoding="utf-8"))["agreement"]

    def encode(self, texts, batch_size=ENCODE_BATCH_SIZE, device="cpu"):
        """Always on the CPU (``device`` is accepted for the common interface)."""
        return self._load().encode(list(texts), batch_size=batch_size, workers=self.workers)
