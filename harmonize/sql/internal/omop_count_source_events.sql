-- omop_count_source_events: how many events the OMOP reader copied (source codes).
-- params: none
SELECT count(*) FROM omop_source_events;
