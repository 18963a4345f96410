-- insert_decision: records a person's decision on one source concept's mapping.
-- params: source, code, target, target_code, decision, reviewer, note, predicate
INSERT INTO decisions VALUES (
    $source, $code, $target, $target_code, $decision, $reviewer, $note, now()::TIMESTAMP,
    $predicate
);
