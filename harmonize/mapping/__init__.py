"""Mapping: each source concept's candidates in the target site, one chosen, stored and reviewed.

:mod:`.pipeline` runs ``map`` as named stages (read both sites, search, choose, store);
:mod:`.rerank` is the known-pairs reranker of ``map --known``; the other modules evaluate,
calibrate, review, export and fine-tune.
"""
