-- pair_mappings: one pair's chosen mappings with both sides' descriptions, systems and frequency.
-- params: source, target
SELECT
    m.source_code,
    s.description AS source_description,
    s.system AS source_system,
    s.frequency AS source_frequency,
    m.target_code,
    t.description AS target_description,
    t.system AS target_system,
    m.score,
    m.confidence,
    m.predicate,
    m.method,
    m.run_id,
    m.created_at
FROM mappings AS m
LEFT JOIN concepts AS s ON s.site = m.source_site AND s.code = m.source_code
LEFT JOIN concepts AS t ON t.site = m.target_site AND t.code = m.target_code
WHERE m.source_site = $source AND m.target_site = $target
ORDER BY m.source_code;
