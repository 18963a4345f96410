-- site_concepts: one site's concepts in index order (concept_id = FAISS row).
-- params: site
SELECT concept_id, code, description
FROM concepts
WHERE site = $site
ORDER BY concept_id;
