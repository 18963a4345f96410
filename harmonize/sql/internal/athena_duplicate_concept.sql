-- athena_duplicate_concept: a concept_id that CONCEPT.csv lists twice (among the kept rows).
-- params: none
SELECT concept_id, count(*) FROM athena_kept GROUP BY concept_id HAVING count(*) > 1 ORDER BY concept_id LIMIT 1;
