-- athena_kept: temp table athena_kept, the rows of an Athena CONCEPT.csv that pass the filters,
-- numbered in concept_id order (row = the site's concept_id = FAISS row).
-- params: path, columns, vocabularies, domains, classes, standard, include_invalid
CREATE OR REPLACE TEMP TABLE athena_kept AS
SELECT
    (row_number() OVER (ORDER BY concept_id) - 1)::INTEGER AS row,
    *
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
