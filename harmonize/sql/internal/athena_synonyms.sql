-- athena_synonyms: the kept concepts' CONCEPT_SYNONYM texts, other than the name itself (any
-- case), each once, numbered 1, 2, ... per concept in text order.
-- params: site, path, columns
INSERT INTO concept_synonyms
SELECT $site, row, row_number() OVER (PARTITION BY row ORDER BY text)::INTEGER, text
FROM (
    SELECT DISTINCT x.row, trim(s.concept_synonym_name) AS text
    FROM read_csv($path, delim = '\t', quote = '', escape = '', header = true,
                  auto_detect = false, columns = $columns) AS s
    JOIN athena_kept AS x ON x.concept_id = CAST(s.concept_id AS BIGINT)
    WHERE trim(s.concept_synonym_name) <> ''
      AND lower(trim(s.concept_synonym_name)) <> lower(x.concept_name)
);
