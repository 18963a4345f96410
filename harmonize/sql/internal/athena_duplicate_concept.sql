-- athena_duplicate_concept: a concept_id that CONCEPT.csv lists twice (among the kept rows).
-- params: none
SELECT id, count(*) FROM athena_ids GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 1;
