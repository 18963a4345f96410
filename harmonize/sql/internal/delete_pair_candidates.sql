-- delete_pair_candidates: removes one (source, target) pair's rows from candidates before a re-map.
-- params: source, target
DELETE FROM candidates WHERE source_site = $source AND target_site = $target;
