-- athena_insert_concepts: stores the rows of an Athena CONCEPT.csv that pass the filters as site
-- $site's concepts, in concept_id order (row = FAISS row); code is the concept_id.
-- params: site, path, columns, vocabularies, domains, classes, standard, include_invalid
INSERT INTO concepts
SELECT
    $site,
    (row_number() OVER (ORDER BY concept_id) - 1)::INTEGER,
    concept_id::VARCHAR,
    concept_name,
    vocabulary_id,
    NULL,
    NULL,
    json_object(
        'concept_code', concept_code, 'vocabulary_id', vocabulary_id,
        'domain_id', domain_id, 'concept_class_id', concept_class_id,
        'standard_concept', standard_concept, 'invalid_reason', invalid_reason
    )::VARCHAR
FROM (
    SELECT
        CAST(concept_id AS BIGINT) AS concept_id,
        trim(concept_name) AS concept_name,
        domain_id, vocabulary_id, concept_class_id,
        nullif(standard_concept, '') AS standard_concept,
        concept_code,
        nullif(invalid_reason, '') AS invalid_reason
    FROM read_csv($path, delim = '\t', quote = '', escape = '', header = true,
                  auto_detect = false, columns = $columns, null_padding = false)
)
WHERE ($vocabularies IS NULL OR list_contains($vocabularies, vocabulary_id))
  AND ($domains IS NULL OR list_contains($domains, domain_id))
  AND ($classes IS NULL OR list_contains($classes, concept_class_id))
  AND (NOT $standard OR standard_concept = 'S')
  AND ($include_invalid OR invalid_reason IS NULL)
  AND concept_name <> '';
