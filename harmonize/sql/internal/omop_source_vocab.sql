-- omop_source_vocab: the source values in use, sorted, with their most frequent source concept (else their text and table).
-- params: tables
-- $tables: the event tables' names, in the order of omop_source_events.tbl (0-based).
-- domain_id and concept_code are '' when the concept table lacks them; the reader then drops
-- those columns.
WITH freq AS (
    SELECT code, count(*) AS n FROM omop_source_events GROUP BY code
),
-- the most frequent of each code's source concepts found in omop_concepts (ties: smallest)
src AS (
    SELECT code, id, row_number() OVER (PARTITION BY code ORDER BY n DESC, id) AS r
    FROM (
        SELECT e.code, e.source_concept AS id, count(*) AS n
        FROM omop_source_events AS e
        JOIN omop_concepts AS c ON c.concept_id = e.source_concept
        GROUP BY 1, 2
    )
),
-- the most frequent non-zero standard concept (ties: smallest)
std AS (
    SELECT code, id, row_number() OVER (PARTITION BY code ORDER BY n DESC, id) AS r
    FROM (
        SELECT code, concept AS id, count(*) AS n
        FROM omop_source_events
        WHERE concept <> 0
        GROUP BY 1, 2
    )
),
-- the most frequent event table (ties: the first in $tables)
tbl AS (
    SELECT code, tbl, row_number() OVER (PARTITION BY code ORDER BY n DESC, tbl) AS r
    FROM (SELECT code, tbl, count(*) AS n FROM omop_source_events GROUP BY 1, 2)
)
SELECT
    f.code AS code,
    COALESCE(NULLIF(TRIM(c.concept_name), ''), f.code) AS description,
    CASE WHEN s.id IS NULL THEN list_extract($tables, t.tbl + 1) ELSE c.vocabulary_id END
        AS system,
    f.n AS frequency,
    COALESCE(CAST(s.id AS VARCHAR), '') AS source_concept_id,
    COALESCE(c.domain_id, '') AS domain_id,
    COALESCE(c.concept_code, '') AS concept_code,
    COALESCE(CAST(d.id AS VARCHAR), '') AS standard_concept_id
FROM freq AS f
LEFT JOIN src AS s ON s.code = f.code AND s.r = 1
LEFT JOIN omop_concepts AS c ON c.concept_id = s.id
LEFT JOIN std AS d ON d.code = f.code AND d.r = 1
JOIN tbl AS t ON t.code = f.code AND t.r = 1
ORDER BY f.code;
