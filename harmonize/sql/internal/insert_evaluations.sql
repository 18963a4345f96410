-- insert_evaluations: copies the registered relation new_evaluations into evaluations.
-- params: none
INSERT INTO evaluations
SELECT run_id, source_site, target_site, embedding, reading, model, scenario, target_train_size,
       seed, auroc, auprc, accuracy, auroc_low, auroc_high, n_test, now()::TIMESTAMP
FROM new_evaluations;
