-- run_candidates: the candidates of one map run. params: run_id
SELECT source_code, target_code, rank, score FROM candidates WHERE run_id = $run_id;
