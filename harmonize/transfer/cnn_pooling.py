"""How the concept CNN pools a patient's projected texts: max (the study's), sum or attention.

``projected`` holds the first layer's output for every distinct text of ``M`` models,
(M, n_texts, filters); ``ids`` the patients' texts, (M, B, L). A patient is the set of its
texts: repeated ids (the padding) change no pooling. Sum and attention pooling need no gather
per patient: they are a (B, n_texts) weight matrix times the projected texts.

>>> import torch
>>> projected = torch.tensor([[[1.0], [3.0], [2.0]]]); ids = torch.tensor([[[0, 1, 1], [2, 0, 0]]])
>>> pool(projected, ids, "max").flatten().tolist(), pool(projected, ids, "sum").flatten().tolist()
([3.0, 2.0], [4.0, 3.0])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POOLINGS = ("max", "sum", "attention")


def presence(ids: torch.Tensor, n_texts: int) -> torch.Tensor:
    """(M, B, n_texts) 0/1: which texts each patient has."""
    out = torch.zeros((*ids.shape[:2], n_texts), dtype=torch.float32, device=ids.device)
    return out.scatter_(2, ids, 1.0)


def pool(
    projected: torch.Tensor,
    ids: torch.Tensor,
    pooling: str = "max",
    attention: torch.Tensor | None = None,
) -> torch.Tensor:
    """(M, B, filters): each patient's pooled texts. ``attention`` (M, filters, 1) scores each
    projected text; a patient's texts are weighted by the softmax of their scores."""
    m, n, filters = projected.shape
    if pooling == "max":
        offsets = (torch.arange(m, device=ids.device) * n).view(m, 1, 1)
        flat = (ids + offsets).reshape(-1, ids.shape[2])
        pooled = F.embedding_bag(flat, projected.reshape(m * n, filters), mode="max")
        return pooled.view(m, ids.shape[1], filters)
    has = presence(ids, n)
    if pooling == "sum":
        return torch.matmul(has, projected)
    if pooling != "attention" or attention is None:
        raise ValueError(f"pooling must be one of {POOLINGS} (attention needs its weights)")
    scores = torch.matmul(projected, attention).squeeze(2)  # (M, n)
    own = torch.gather(scores, 1, ids.reshape(m, -1)).view(ids.shape)
    top = own.amax(dim=2, keepdim=True).detach()  # (M, B, 1): softmax is shift-invariant
    weights = torch.exp((scores[:, None, :] - top).clamp(max=0.0)) * has
    weights = weights / weights.sum(dim=2, keepdim=True)
    return torch.matmul(weights, projected)
