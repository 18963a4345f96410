-- omop_drop_blank_source: removes the copied events that have no source value.
-- params: none
DELETE FROM omop_source_events WHERE code IS NULL;
