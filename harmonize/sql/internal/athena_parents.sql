-- athena_parents: each kept concept's parent, from CONCEPT_ANCESTOR rows one level apart whose
-- both ends are kept (the smallest concept_id when a concept has several parents).
-- params: site, path, columns
UPDATE concepts SET parent_code = p.parent
FROM (
    SELECT d.row AS row, min(a.id)::VARCHAR AS parent
    FROM read_csv($path, delim = '\t', quote = '', escape = '', header = true,
                  auto_detect = false, columns = $columns) AS r
    JOIN athena_ids AS d ON d.id = CAST(r.descendant_concept_id AS BIGINT)
    JOIN athena_ids AS a ON a.id = CAST(r.ancestor_concept_id AS BIGINT)
    WHERE trim(r.min_levels_of_separation) = '1' AND a.id <> d.id
    GROUP BY d.row
) AS p
WHERE concepts.site = $site AND concepts.concept_id = p.row;
