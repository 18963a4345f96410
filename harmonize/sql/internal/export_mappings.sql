-- export_mappings: one pair's chosen mappings for an export: both sides' descriptions, systems
-- and frequency, the target's domain, and for a person's mapping who decided it, when and why.
-- params: source, target
SELECT
    m.source_code,
    m.source_description,
    m.source_system,
    m.source_frequency,
    m.target_code,
    m.target_description,
    m.target_system,
    json_extract_string(t.extra, '$.domain_id') AS target_domain,
    m.score,
    m.confidence,
    m.predicate,
    m.method,
    m.run_id,
    m.created_at,
    d.reviewer,
    d.decided_at,
    d.note
FROM mapped_concepts AS m
LEFT JOIN concepts AS t ON t.site = m.target_site AND t.code = m.target_code
LEFT JOIN (
    -- the newest accept or set of each (source code, target code)
    SELECT source_code, target_code, reviewer, decided_at, note
    FROM decisions
    WHERE source_site = $source AND target_site = $target AND decision IN ('accept', 'set')
    QUALIFY row_number() OVER (
        PARTITION BY source_code, target_code ORDER BY decided_at DESC
    ) = 1
) AS d
    ON m.method LIKE 'manual:%' AND d.source_code = m.source_code
    AND d.target_code = m.target_code
WHERE m.source_site = $source AND m.target_site = $target
ORDER BY m.source_code, m.target_code;
