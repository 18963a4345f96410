-- delete_pair_matches: removes one (source, target) pair's rows from matches before a re-map.
-- params: source, target
DELETE FROM matches WHERE source_site = $source AND target_site = $target;
