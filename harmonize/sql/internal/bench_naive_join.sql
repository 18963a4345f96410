-- bench_naive_join: events per target code through a join keyed on (site, code).
-- params: none
SELECT m.target_code, count(*)
FROM events AS e
JOIN mappings AS m
    ON m.source_site = e.site AND m.source_code = e.code AND m.target_site = 'other'
GROUP BY m.target_code;
