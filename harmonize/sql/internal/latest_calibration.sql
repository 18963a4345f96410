-- latest_calibration: the newest calibration of a model's cosines. params: model
SELECT points, n, brier, source_site, target_site FROM calibrations
WHERE model = $model ORDER BY created_at DESC LIMIT 1;
