-- site_concept_systems: one site's concepts' code systems (e.g. ICD10CM, or NULL) in index order.
-- params: site
SELECT system
FROM concepts
WHERE site = $site
ORDER BY concept_id;
