-- athena_maps_to: the 'Maps to' edges of CONCEPT_RELATIONSHIP between two different kept
-- concepts (valid ones only unless $include_invalid).
-- params: site, path, columns, include_invalid
INSERT INTO concept_links
SELECT DISTINCT $site, a.concept_id::VARCHAR, 'Maps to', b.concept_id::VARCHAR
FROM read_csv($path, delim = '\t', quote = '', escape = '', header = true,
              auto_detect = false, columns = $columns) AS r
JOIN athena_kept AS a ON a.concept_id = CAST(r.concept_id_1 AS BIGINT)
JOIN athena_kept AS b ON b.concept_id = CAST(r.concept_id_2 AS BIGINT)
WHERE r.relationship_id = 'Maps to' AND a.concept_id <> b.concept_id
  AND ($include_invalid OR coalesce(r.invalid_reason, '') = '');
