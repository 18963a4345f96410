-- run_mappings: the chosen mappings of one map run. params: run_id
SELECT source_code, target_code, score FROM mappings WHERE run_id = $run_id;
