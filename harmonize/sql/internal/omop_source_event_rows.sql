-- omop_source_event_rows: the copied events (source codes) as subject_id, time, code, value.
-- params: none
SELECT
    CAST(person AS VARCHAR) AS subject_id,
    time AS time,
    code AS code,
    value AS value
FROM omop_source_events
ORDER BY person, time NULLS FIRST, tbl, code, value NULLS FIRST;
