-- import_scores: the imported mappings with the score of the stored mapping they keep (NULL
-- where the person's target is not the model's), into temp table imported_mappings.
-- params: source, target
CREATE OR REPLACE TEMP TABLE imported_mappings AS
SELECT i.source_code, i.target_code, m.score, i.decided_at, i.predicate
FROM imported AS i
LEFT JOIN mappings AS m
    ON m.source_site = $source AND m.target_site = $target
    AND m.source_code = i.source_code AND m.target_code = i.target_code;
