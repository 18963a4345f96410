-- count_unmapped_events: a site's events whose code has no mapping onto the target.
-- params: source, target
SELECT count(*) FROM events AS e
WHERE e.site = $source AND NOT EXISTS (
    SELECT 1 FROM mappings AS m
    WHERE m.source_site = e.site AND m.source_code = e.code AND m.target_site = $target
);
