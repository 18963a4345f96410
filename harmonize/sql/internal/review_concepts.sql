-- review_concepts: one site's concepts with what a reviewer reads beside them (parent,
-- frequency, other vocabulary columns as JSON). params: site
SELECT concept_id, code, description, parent_code, frequency, extra
FROM concepts
WHERE site = $site
ORDER BY concept_id;
