-- insert_run: records one map run's provenance.
-- params: run_id, source, target, model, strategy, k, min_score, n_source, n_mapped, version
INSERT INTO runs VALUES (
    $run_id, $source, $target, $model, $strategy, $k, $min_score, $n_source, $n_mapped,
    $version, now()::TIMESTAMP
);
