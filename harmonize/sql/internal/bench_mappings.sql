-- bench_mappings: the SQL benchmark's mappings: each of $n codes of 'site' onto 'other' ($half targets), and back.
-- params: n, half
CREATE TABLE mappings AS
SELECT 'site' AS source_site, 'C' || i AS source_code, 'other' AS target_site,
       'T' || (i % $half) AS target_code
FROM range($n) t(i)
UNION ALL
SELECT 'other', 'T' || i, 'site', 'C' || i FROM range($n) t(i);
