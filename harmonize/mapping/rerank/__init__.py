"""The known-pairs reranker of ``map --known``: candidates, their features, the learned ranker.

:mod:`.pipeline` runs it as stages on data the mapping pipeline read; :mod:`.candidates` builds
each concept's candidates and features, :mod:`.model` fits and applies the ranker, and
:mod:`.known_pairs`, :mod:`.equivalence`, :mod:`.cooccurrence`, :mod:`.word_differences` and
:mod:`.qualifiers` supply the signals it learns from.
"""
