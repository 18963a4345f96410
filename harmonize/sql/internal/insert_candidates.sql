-- insert_candidates: copies the registered relation new_candidates into candidates. params: none
INSERT INTO candidates
SELECT source_site, source_code, target_site, target_code, rank, score, method, run_id
FROM new_candidates;
