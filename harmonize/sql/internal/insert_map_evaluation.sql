-- insert_map_evaluation: stores one eval-map result.
-- params: source, target, run_id, gold_file, gold_sha256, n, n_unknown, top1, top5, top10, mrr, coverage, precision, recall
INSERT INTO map_evaluations VALUES (
    $source, $target, $run_id, $gold_file, $gold_sha256, $n, $n_unknown, $top1, $top5, $top10,
    $mrr, $coverage, $precision, $recall, now()::TIMESTAMP
);
