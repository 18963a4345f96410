-- current_mapping: one source concept's stored mapping. params: source, target, code
SELECT target_code, score, predicate FROM mappings
WHERE source_site = $source AND target_site = $target AND source_code = $code;
