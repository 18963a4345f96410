-- bench_row_join: events per target code through a per-event join (the pair's mappings first, joined on the code alone).
-- params: source, target
WITH m AS (
    SELECT source_code, target_code
    FROM mappings
    WHERE source_site = $source AND target_site = $target
)
SELECT m.target_code, count(*)
FROM events AS e
JOIN m ON m.source_code = e.code
WHERE e.site = $source
GROUP BY m.target_code;
