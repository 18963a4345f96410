-- latest_decisions: the newest decision per source concept of one pair (several when they
-- share the newest time: an imported code with several targets).
-- params: source, target
SELECT source_code, target_code, decision, reviewer, note, decided_at, predicate
FROM decisions
WHERE source_site = $source AND target_site = $target
QUALIFY rank() OVER (PARTITION BY source_code ORDER BY decided_at DESC) = 1;
