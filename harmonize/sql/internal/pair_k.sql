-- pair_k: the k of the newest map run of one pair. params: source, target
SELECT k FROM runs WHERE source_site = $source AND target_site = $target
ORDER BY created_at DESC LIMIT 1;
