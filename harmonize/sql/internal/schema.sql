-- schema: creates every table and view of a workspace; idempotent.
-- params: none
CREATE TABLE IF NOT EXISTS workspace_info (
    schema_version INTEGER NOT NULL   -- bumped whenever a table changes shape
);
CREATE TABLE IF NOT EXISTS sites (
    site          VARCHAR NOT NULL,   -- unique; checked in Python (DuckDB keys make replace awkward)
    vocab_file    VARCHAR,
    vocab_sha256  VARCHAR NOT NULL,   -- sha256 over (code, description) rows in file order
    n_concepts    INTEGER NOT NULL,
    added_at      TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS concepts (
    site          VARCHAR NOT NULL,
    concept_id    INTEGER NOT NULL,   -- 0-based row in the vocabulary = row in the site's FAISS index
    code          VARCHAR NOT NULL,
    description   VARCHAR NOT NULL,
    system        VARCHAR,
    parent_code   VARCHAR,
    frequency     BIGINT,
    extra         VARCHAR             -- other vocabulary columns, as a JSON object
);
CREATE TABLE IF NOT EXISTS events (
    site          VARCHAR NOT NULL,
    subject_id    VARCHAR NOT NULL,
    time          TIMESTAMP,
    code          VARCHAR NOT NULL,
    value         VARCHAR
);
CREATE TABLE IF NOT EXISTS labels (
    site          VARCHAR NOT NULL,
    subject_id    VARCHAR NOT NULL,
    label         VARCHAR NOT NULL,
    value         VARCHAR,
    split         VARCHAR NOT NULL    -- 'train' or 'test'
);
CREATE TABLE IF NOT EXISTS site_tasks (
    site          VARCHAR NOT NULL,
    label         VARCHAR NOT NULL,   -- the label column
    positive      VARCHAR NOT NULL    -- its value that makes the positive class
);
CREATE TABLE IF NOT EXISTS level_texts (
    site          VARCHAR NOT NULL,
    code          VARCHAR NOT NULL,
    value         VARCHAR NOT NULL,
    text          VARCHAR NOT NULL    -- the text embedded for this code at this level
);
CREATE TABLE IF NOT EXISTS runs (
    run_id        VARCHAR NOT NULL,
    source_site   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    model         VARCHAR NOT NULL,
    strategy      VARCHAR NOT NULL,
    k             INTEGER NOT NULL,
    min_score     DOUBLE,
    n_source      INTEGER NOT NULL,
    n_mapped      INTEGER NOT NULL,
    harmonize_version VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    source_site   VARCHAR NOT NULL,
    source_code   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    target_code   VARCHAR NOT NULL,
    rank          INTEGER NOT NULL,   -- 1 = nearest
    score         DOUBLE NOT NULL,    -- cosine similarity
    method        VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS mappings (
    source_site   VARCHAR NOT NULL,
    source_code   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    target_code   VARCHAR NOT NULL,
    score         DOUBLE,             -- cosine; NULL for a person's choice the model never ranked
    method        VARCHAR NOT NULL,   -- model:strategy, or manual:accept / manual:set
    run_id        VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    confidence    DOUBLE,             -- calibrated P(right) from `harmonize calibrate`, else NULL
    predicate     VARCHAR             -- SKOS relation asserted (skos:exactMatch...), else NULL
);
CREATE TABLE IF NOT EXISTS calibrations (
    model         VARCHAR NOT NULL,   -- the encoder spec whose cosines it calibrates
    source_site   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    gold_file     VARCHAR NOT NULL,
    n             INTEGER NOT NULL,
    brier         DOUBLE NOT NULL,
    points        VARCHAR NOT NULL,   -- JSON {"x": [...], "y": [...]}: isotonic steps
    created_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS map_evaluations (
    source_site   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,   -- the map run whose candidates were scored
    gold_file     VARCHAR NOT NULL,
    gold_sha256   VARCHAR NOT NULL,
    n             INTEGER NOT NULL,   -- gold source codes present in the source site
    n_unknown     INTEGER NOT NULL,   -- gold source codes the source site does not have
    top1          DOUBLE,
    top5          DOUBLE,
    top10         DOUBLE,
    mrr           DOUBLE,
    coverage      DOUBLE,
    precision     DOUBLE,
    recall        DOUBLE,
    created_at    TIMESTAMP NOT NULL
);
CREATE OR REPLACE VIEW mapped_concepts AS
SELECT
    m.source_site,
    m.source_code,
    s.description AS source_description,
    m.target_site,
    m.target_code,
    t.description AS target_description,
    m.score,
    m.confidence,
    m.predicate,
    m.method,
    m.run_id,
    m.created_at,
    -- after the original columns, so that positional readers of SELECT * keep working
    s.system AS source_system,
    s.frequency AS source_frequency,
    t.system AS target_system
FROM mappings AS m
LEFT JOIN concepts AS s ON s.site = m.source_site AND s.code = m.source_code
LEFT JOIN concepts AS t ON t.site = m.target_site AND t.code = m.target_code;
CREATE TABLE IF NOT EXISTS evaluations (
    run_id        VARCHAR NOT NULL,
    source_site   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    embedding     VARCHAR NOT NULL,
    reading       VARCHAR NOT NULL,
    model         VARCHAR NOT NULL,   -- cnn or logreg
    scenario      VARCHAR NOT NULL,
    target_train_size INTEGER NOT NULL, -- 0 for direct transfer (no target training data)
    seed          INTEGER NOT NULL,
    auroc         DOUBLE,
    auprc         DOUBLE,
    accuracy      DOUBLE,
    auroc_low     DOUBLE,
    auroc_high    DOUBLE,
    n_test        INTEGER NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    source_site   VARCHAR NOT NULL,
    source_code   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    target_code   VARCHAR,            -- NULL for a rejection of "no mapping"
    decision      VARCHAR NOT NULL,   -- accept, reject or set
    reviewer      VARCHAR NOT NULL,
    note          VARCHAR,
    decided_at    TIMESTAMP NOT NULL,
    predicate     VARCHAR             -- SKOS relation the person asserted, else NULL
);
CREATE TABLE IF NOT EXISTS concept_synonyms (
    site          VARCHAR NOT NULL,
    concept_id    INTEGER NOT NULL,   -- the concept's row (concepts.concept_id)
    position      INTEGER NOT NULL,   -- 1, 2, ...: the synonym's place after the concept's name
    text          VARCHAR NOT NULL    -- embedded and indexed beside the name
);
CREATE TABLE IF NOT EXISTS concept_links (
    site          VARCHAR NOT NULL,
    code          VARCHAR NOT NULL,   -- a (non-standard) concept of the site
    relationship  VARCHAR NOT NULL,   -- 'Maps to'
    target_code   VARCHAR NOT NULL    -- the site's (standard) concept it maps to
);
CREATE TABLE IF NOT EXISTS matches (
    source_site   VARCHAR NOT NULL,
    source_code   VARCHAR NOT NULL,
    target_site   VARCHAR NOT NULL,
    target_code   VARCHAR NOT NULL,
    matched_text  VARCHAR,            -- the target text (name or synonym) the best hit was on
    via_code      VARCHAR,            -- the non-standard concept whose 'Maps to' led here
    run_id        VARCHAR NOT NULL    -- one row per candidate of a run that a synonym or a
);                                    -- 'Maps to' edge produced (a name hit has none)
