-- omop_used_standard: records the concept_ids the events use (standard codes).
-- params: none
INSERT INTO omop_used_concepts SELECT DISTINCT concept FROM omop_events;
