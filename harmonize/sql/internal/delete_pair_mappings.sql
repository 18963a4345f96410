-- delete_pair_mappings: removes one (source, target) pair's rows from mappings before a re-map.
-- params: source, target
DELETE FROM mappings WHERE source_site = $source AND target_site = $target;
