-- bench_events: the SQL benchmark's synthetic events of site 'site' ($rows rows over $n codes).
-- params: n, rows
CREATE TABLE events AS
SELECT
    'site' AS site,
    (i % 100000)::VARCHAR AS subject_id,
    NULL::TIMESTAMP AS time,
    ('C' || (floor(random() * $n))::INT) AS code,
    'P' AS value
FROM range($rows) t(i);
