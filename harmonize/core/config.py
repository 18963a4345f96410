"""Defaults in one place.

>>> DEFAULT_MODEL
'minilm'
"""

from __future__ import annotations

from pathlib import Path

DB_FILENAME = "harmonize.duckdb"
INDEX_DIRNAME = "indexes"
CACHE_DIRNAME = "cache"
INDEX_FILENAME = "index.faiss"
META_FILENAME = "meta.json"
WORKSPACE_ENV = "HARMONIZE_WORKSPACE"
DEMO_WORKSPACE = "demo-workspace"
# DuckDB lets one process write a file at a time: a command finding the workspace locked waits
# this many seconds (env HARMONIZE_LOCK_WAIT) for the other to finish before it gives up.
LOCK_WAIT_ENV = "HARMONIZE_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 3.0

# Bump when a table of sql/internal/schema.sql changes shape.
SCHEMA_VERSION = 6

DEFAULT_MODEL = "minilm"
DEFAULT_DEVICE = "auto"
DEFAULT_INDEX = "flat"
DEFAULT_K = 5
DEFAULT_STRATEGY = "best"
STRATEGIES = ("best", "mutual", "one-to-one")
INDEX_TYPES = ("flat", "hnsw")
DEVICES = ("auto", "cpu", "gpu")

# Texts are embedded in chunks so the cache can be saved and progress shown between them.
ENCODE_BATCH_SIZE = 64
ENCODE_CHUNK_SIZE = 2048
# build-index embeds and adds to the index this many texts at a time (bounded memory; the
# lexical encoder's dense 4096-dim rows make 20k texts about 330 MB).
BUILD_CHUNK_SIZE = 20_000

# HNSW: M links per node; efConstruction/efSearch trade build and query time for recall.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128

# The lexical baseline hashes character n-grams into this many dimensions.
LEXICAL_DIM = 4096
LEXICAL_NGRAMS = (2, 4)

# Hybrid retrieval (--model minilm+lexical): each model's top FUSION_DEPTH candidates are fused
# by reciprocal rank with constant RRF_K (Cormack, Clarke & Buettcher 2009).
FUSION_DEPTH = 50
RRF_K = 60

# one-to-one assignment builds a dense source x target matrix; refuse beyond this many cells.
ONE_TO_ONE_MAX_CELLS = 50_000_000

# Rows of a mapping shown on the terminal before "... N more".
PREVIEW_ROWS = 20
# Candidates per concept that `review` shows (harmonize/mapping/queue.py).
REVIEW_CANDIDATES = 3
# Review columns that describe a vocabulary target (empty elsewhere): the synonym the match was
# on, the non-standard concept whose 'Maps to' led there, and the target's OMOP fields.
VOCABULARY_COLUMNS = (
    "matched_text",
    "via_code",
    "target_concept_code",
    "target_vocabulary",
    "target_domain",
    "target_class",
)

SITE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PACKAGE_DIR / "data"
# SQL ships inside the package (harmonize/sql) so wheels carry it; a workspace may add its own.
SQL_DIR = PACKAGE_DIR / "sql"

# Known pairs (map --known FILE, harmonize/mapping/rerank): hierarchy neighbours vote for their
# targets with softmax(cosine / KNOWN_TAU) weights; tau chosen on a validation part of the ICD
# training half (0.005-0.02 within 1 point of top-1; 0.02 gave the best top-10). The reranker
# learns from at most KNOWN_TRAIN_MAX known concepts (seeded sample), cross-fitted in
# KNOWN_FOLDS folds, and needs KNOWN_MIN_PAIRS right and wrong candidates; each query keeps its
# KNOWN_DEPTH nearest targets as candidates.
KNOWN_TAU = 0.02
# 30,000: on all 34,122 held-out ICD-10-CM -> ICD-9-CM codes of the untouched split, top-1
# 0.927 / 0.938 and exact 1:1 pairs 95.3 % / 96.1 % with 12,000 / 30,000, in 2.2 / 3.5 minutes
# of bench-map on a 2-core CPU (map --known --reranker-concepts sets it per run).
KNOWN_TRAIN_MAX = 30000
KNOWN_FOLDS = 5
KNOWN_MIN_PAIRS = 10
KNOWN_DEPTH = 10
# Trees of the LambdaRank reranker (learning rate 0.05, 31 leaves): 600 trees or 63 leaves were
# within 0.1 point of held-out ICD-10-CM top-1 at two and 1.4 times the time.
KNOWN_RANKER_TREES = 300
# Below this many training concepts the reranker is a per-row classifier instead (it was ahead
# at 50 known ICD-10-CM concepts and on the demo's 46, level at 200 and 1,000, behind at 4,000).
KNOWN_RANKER_MIN = 500
# The word-difference model (mapping/rerank/word_differences.py): hashed features and the inverse
# regularisation of its logistic regression (0.3 against 1.0: +0.5 top-1 on the seed-0 sample).
KNOWN_WORDPAIR_FEATURES = 2**20
KNOWN_WORDPAIR_C = 0.3
RANDOM_STATE = 0
# Self-training (map with nothing known, harmonize/mapping/rerank/self_training.py): mutual
# nearest neighbours whose best cosine leads the second by SELF_TRAIN_MARGIN both ways become
# pseudo-known pairs; it runs when each of its two halves has SELF_TRAIN_MIN_PAIRS of them.
SELF_TRAIN_MARGIN = 0.05
SELF_TRAIN_MIN_PAIRS = 20
# Hub correction of zero-shot retrieval (harmonize/mapping/zeroshot.py): each candidate's
# cosine less HUB_WEIGHT times its mean cosine to its HUB_NEIGHBOURS nearest source concepts
# (CSLS-like, Conneau et al. 2018), re-sorting each concept's HUB_DEPTH nearest targets.
HUB_NEIGHBOURS = 3
HUB_WEIGHT = 0.25
HUB_DEPTH = 50
# Below this many concepts at either site the correction is left out: a concept's 3 nearest are
# then a large share of the site, and on the README's 12-concept example it cost top-1 (one of 11
# gold codes: "dry cough" went to "productive cough").
HUB_MIN_CONCEPTS = 20
# What map does with nothing known (map --no-zero-shot: none of it); every lever is measured
# in reports/mapping-quality.md (acronyms + hubs: demo top-1 68.5 -> 75.0 %, all held-out GEM
# codes of seed 1 +0.7 top-1 and +1.3 top-10; icd-seventh + icd-notes + icd-crossref, which
# change only ICD-10-CM source concepts: seed-0 GEM sample top-1 0.293 -> 0.4665, top-10
# 0.482 -> 0.782); "self-training", "contrast" and "icd-inclusion" did not pay.
ZERO_SHOT_LEVERS = ("acronyms", "hubs", "icd-seventh", "icd-notes", "icd-crossref")
ALL_ZERO_SHOT_LEVERS = (
    "acronyms", "hubs", "contrast", "self-training", "icd-inclusion", "icd-seventh", "icd-notes",
    "icd-crossref",
)  # fmt: skip

# fine-tune: sentence-transformers' multiple-negatives ranking loss over known description
# pairs. Batch 32 and one epoch on 8,000 ICD-10-CM -> ICD-9-CM pairs took 9.4 min on one CPU
# thread and doubled held-out top-1 (reports/mapping-quality.md). FINETUNE_HOLDOUT of the known
# source concepts are kept out of training to report what it did.
FINETUNE_EPOCHS = 1
FINETUNE_BATCH_SIZE = 32
FINETUNE_LR = 2e-5
FINETUNE_HOLDOUT = 0.1
FINETUNE_THREADS = 1
# Each pair also trains against the base model's nearest wrong target: on the same 8,000 pairs
# plain top-1 55.5 % -> 64.6 % (1.15x the training time).
FINETUNE_HARD_NEGATIVES = True

# minilm-adapted: MiniLM fine-tuned once per machine on ADAPT_PAIRS public synonym pairs (half
# ICD-10-CM inclusion terms, half ICD-9-CM short/long titles; harmonize/mapping/adapt.py).
# 8,000 pairs, one epoch, no hard negatives: 7.5 minutes on 2 CPU cores (406 s of training).
# Zero-shot GEM top-1 and the demo's both rise with it (reports/mapping-quality.md).
ADAPT_PAIRS = 8000
ADAPT_RECIPE = "v1"
