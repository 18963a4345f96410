-- omop_standard_vocab: the concepts in use, in concept_id order, with their names (else their concept_id).
-- params: none
-- domain_id and concept_code are '' when the concept table lacks them; the reader then drops
-- those columns.
SELECT
    CAST(e.concept AS VARCHAR) AS code,
    COALESCE(NULLIF(TRIM(c.concept_name), ''), CAST(e.concept AS VARCHAR)) AS description,
    c.vocabulary_id AS system,
    e.n AS frequency,
    COALESCE(c.domain_id, '') AS domain_id,
    COALESCE(c.concept_code, '') AS concept_code
FROM (SELECT concept, count(*) AS n FROM omop_events GROUP BY concept) AS e
LEFT JOIN omop_concepts AS c ON c.concept_id = e.concept
ORDER BY e.concept;
