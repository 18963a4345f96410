-- recode_for_export: a site's events in another site's codes, mapped ones only.
-- params: source, target
SELECT e.subject_id, e.time, m.target_code AS code, e.value
FROM events AS e
JOIN mappings AS m
    ON m.source_site = e.site AND m.source_code = e.code AND m.target_site = $target
WHERE e.site = $source
ORDER BY e.subject_id, e.time, m.target_code;
