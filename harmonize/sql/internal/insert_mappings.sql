-- insert_mappings: copies the registered relation new_mappings into mappings. params: none
INSERT INTO mappings
SELECT source_site, source_code, target_site, target_code, score, method, run_id,
       now()::TIMESTAMP, confidence, predicate
FROM new_mappings;
