-- insert_calibration: stores a fitted calibration.
-- params: model, source, target, gold_file, n, brier, points
INSERT INTO calibrations VALUES (
    $model, $source, $target, $gold_file, $n, $brier, $points, now()::TIMESTAMP
);
