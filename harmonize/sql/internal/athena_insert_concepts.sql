-- athena_insert_concepts: stores the kept concepts (athena_kept) with their parents as site
-- $site's concepts; code is the concept_id, vocabulary_id the system, the rest in extra.
-- params: site
INSERT INTO concepts
SELECT
    $site, k.row, k.concept_id::VARCHAR, k.concept_name, k.vocabulary_id, p.parent, NULL,
    json_object(
        'concept_code', k.concept_code, 'vocabulary_id', k.vocabulary_id,
        'domain_id', k.domain_id, 'concept_class_id', k.concept_class_id,
        'standard_concept', k.standard_concept, 'invalid_reason', k.invalid_reason
    )::VARCHAR
FROM athena_kept AS k
LEFT JOIN athena_parents AS p ON p.row = k.row
ORDER BY k.row;
