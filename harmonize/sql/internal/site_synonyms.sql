-- site_synonyms: a site's synonyms in index order (after the names): concept row, text.
-- params: site
SELECT concept_id, text
FROM concept_synonyms
WHERE site = $site
ORDER BY concept_id, position;
