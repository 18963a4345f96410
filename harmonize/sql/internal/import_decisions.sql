-- import_decisions: records the registered relation imported (source_code, target_code,
-- reviewer, note, decided_at, predicate) as 'set' decisions of one pair.
-- params: source, target
INSERT INTO decisions
SELECT $source, source_code, $target, target_code, 'set', reviewer, note, decided_at, predicate
FROM imported;
