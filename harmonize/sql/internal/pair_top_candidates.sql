-- pair_top_candidates: each source concept's best candidate of one pair, with its model.
-- params: source, target
SELECT source_code, target_code, score, method FROM candidates
WHERE source_site = $source AND target_site = $target AND rank = 1;
