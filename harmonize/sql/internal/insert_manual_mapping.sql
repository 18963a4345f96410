-- insert_manual_mapping: a mapping decided by a person.
-- params: source, code, target, target_code, score, method, predicate
INSERT INTO mappings VALUES (
    $source, $code, $target, $target_code, $score, $method, 'manual', now()::TIMESTAMP, NULL,
    $predicate
);
