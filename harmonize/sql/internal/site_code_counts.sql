-- site_code_counts: per concept of one site, its events (values A and M, absent and missing,
-- not counted) and the vocabulary's frequency. params: site
SELECT c.code, count(e.code) AS events, any_value(c.frequency) AS frequency
FROM concepts AS c
LEFT JOIN events AS e ON e.site = c.site AND e.code = c.code
    AND (e.value IS NULL OR e.value NOT IN ('A', 'M'))
WHERE c.site = $site
GROUP BY c.code
ORDER BY c.code;
