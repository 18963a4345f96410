-- delete_mapping: removes one source concept's mapping of a pair. params: source, target, code
DELETE FROM mappings WHERE source_site = $source AND target_site = $target AND source_code = $code;
