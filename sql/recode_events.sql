-- recode_events: the source site's events rewritten into the target site's codes via mappings.
-- An event whose code has no mapping keeps mapped_code NULL, so nothing is silently dropped.
-- params: source, target
SELECT
    e.subject_id,
    e.time,
    e.code,
    m.target_code AS mapped_code,
    t.description AS mapped_description,
    e.value,
    m.score
FROM events AS e
LEFT JOIN mappings AS m
    ON m.source_site = e.site AND m.source_code = e.code AND m.target_site = $target
LEFT JOIN concepts AS t
    ON t.site = $target AND t.code = m.target_code
WHERE e.site = $source
ORDER BY e.subject_id, e.time, e.code;
