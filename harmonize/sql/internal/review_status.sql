-- review_status: every source concept of one pair with its review status: approved (newest
-- decision accept or set), rejected (newest decision reject), undecided (mapped by the model,
-- nobody decided) or unmapped; and whether it has a mapping now. params: source, target
WITH latest AS (
    SELECT source_code, decision FROM decisions
    WHERE source_site = $source AND target_site = $target
    QUALIFY row_number() OVER (PARTITION BY source_code ORDER BY decided_at DESC) = 1
),
mapped AS (
    SELECT DISTINCT source_code FROM mappings
    WHERE source_site = $source AND target_site = $target
)
SELECT c.code AS source_code,
       CASE WHEN l.decision IN ('accept', 'set') THEN 'approved'
            WHEN l.decision = 'reject' THEN 'rejected'
            WHEN m.source_code IS NOT NULL THEN 'undecided'
            ELSE 'unmapped' END AS status,
       m.source_code IS NOT NULL AS mapped
FROM concepts AS c
LEFT JOIN latest AS l ON l.source_code = c.code
LEFT JOIN mapped AS m ON m.source_code = c.code
WHERE c.site = $source
ORDER BY c.code;
