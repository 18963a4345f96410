-- omop_count_blank_source: how many copied events have no source value (they are left out).
-- params: none
SELECT count(*) FROM omop_source_events WHERE code IS NULL;
