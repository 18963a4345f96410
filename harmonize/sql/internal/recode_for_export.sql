-- recode_for_export: a site's events in another site's codes, mapped ones only.
-- params: source, target
-- The pair's mappings are filtered first so the join is keyed on the code alone.
WITH m AS (
    SELECT source_code, target_code
    FROM mappings
    WHERE source_site = $source AND target_site = $target
)
SELECT e.subject_id, e.time, m.target_code AS code, e.value
FROM events AS e
JOIN m
    ON m.source_code = e.code
WHERE e.site = $source
ORDER BY e.subject_id, e.time, m.target_code;
