-- omop_standard_event_rows: the copied events (standard codes) as subject_id, time, code, value.
-- params: none
SELECT
    CAST(person AS VARCHAR) AS subject_id,
    time AS time,
    CAST(concept AS VARCHAR) AS code,
    value AS value
FROM omop_events
ORDER BY person, time NULLS FIRST, tbl, concept, value NULLS FIRST;
