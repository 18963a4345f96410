-- pair_code_map: each mapped code of one site and the other site's code it maps to.
-- params: source, target
SELECT source_code AS code, target_code AS mapped_code
FROM mappings
WHERE source_site = $source AND target_site = $target;
