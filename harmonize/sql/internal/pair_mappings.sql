-- pair_mappings: one pair's chosen mappings with both sides' descriptions, systems and frequency.
-- params: source, target
SELECT
    source_code,
    source_description,
    source_system,
    source_frequency,
    target_code,
    target_description,
    target_system,
    score,
    confidence,
    predicate,
    method,
    run_id,
    created_at
FROM mapped_concepts
WHERE source_site = $source AND target_site = $target
ORDER BY source_code;
