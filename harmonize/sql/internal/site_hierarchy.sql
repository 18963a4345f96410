-- site_hierarchy: one site's concepts in index order with their descriptions and parents.
-- params: site
SELECT concept_id, code, description, parent_code
FROM concepts
WHERE site = $site
ORDER BY concept_id;
