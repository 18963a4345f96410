-- pair_candidates: one pair's stored candidates. params: source, target
SELECT source_code, target_code, rank, score
FROM candidates
WHERE source_site = $source AND target_site = $target;
