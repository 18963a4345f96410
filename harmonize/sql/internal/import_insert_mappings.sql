-- import_insert_mappings: stores the rows of temp table imported_mappings as one pair's
-- mappings (method manual:set, created when decided).
-- params: source, target
INSERT INTO mappings
SELECT $source, source_code, $target, target_code, score, 'manual:set', 'manual', decided_at,
       NULL, predicate
FROM imported_mappings;
