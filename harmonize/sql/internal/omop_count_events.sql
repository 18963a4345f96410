-- omop_count_events: how many events the OMOP reader copied (standard codes).
-- params: none
SELECT count(*) FROM omop_events;
