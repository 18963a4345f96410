-- omop_duplicate_concept: the smallest concept_id that the copied concepts hold more than once, with its count.
-- params: none
SELECT concept_id, count(*)
FROM omop_concepts
GROUP BY concept_id
HAVING count(*) > 1
ORDER BY concept_id
LIMIT 1;
