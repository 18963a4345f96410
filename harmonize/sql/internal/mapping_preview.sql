-- mapping_preview: a pair's chosen mappings with both descriptions, best first.
-- params: source, target
SELECT source_code, source_description, target_code, target_description, score, confidence,
       predicate
FROM mapped_concepts
WHERE source_site = $source AND target_site = $target
ORDER BY score DESC NULLS LAST, source_code;
