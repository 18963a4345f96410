-- athena_parents: each kept concept's parent, from CONCEPT_ANCESTOR rows one level apart whose
-- both ends are kept (the smallest concept_id when a concept has several parents).
-- params: path, columns
INSERT INTO athena_parents
SELECT d.row, min(a.concept_id)::VARCHAR
FROM read_csv($path, delim = '\t', quote = '', escape = '', header = true,
              auto_detect = false, columns = $columns) AS r
JOIN athena_kept AS d ON d.concept_id = CAST(r.descendant_concept_id AS BIGINT)
JOIN athena_kept AS a ON a.concept_id = CAST(r.ancestor_concept_id AS BIGINT)
WHERE trim(r.min_levels_of_separation) = '1' AND a.concept_id <> d.concept_id
GROUP BY d.row;
