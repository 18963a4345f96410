-- bench_bare_counts: the SQL benchmark's reference: events per code, no mapping.
-- params: none
SELECT code, count(*) FROM events GROUP BY code;
