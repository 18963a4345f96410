-- omop_used_source: records the non-zero source concept_ids the events use (source codes).
-- params: none
INSERT INTO omop_used_concepts
SELECT DISTINCT source_concept FROM omop_source_events WHERE source_concept <> 0;
