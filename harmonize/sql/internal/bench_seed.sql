-- bench_seed: seeds DuckDB's random() so that the SQL benchmark's synthetic rows repeat.
-- params: none
SELECT setseed(0.5);
