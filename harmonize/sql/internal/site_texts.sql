-- site_texts: the texts a site's index holds, in FAISS row order: every concept's name (in
-- concept_id order), then every synonym (by concept, then position).
-- params: site
SELECT concept_id, text
FROM (
    SELECT concept_id, 0 AS position, description AS text FROM concepts WHERE site = $site
    UNION ALL
    SELECT concept_id, position, text FROM concept_synonyms WHERE site = $site
)
ORDER BY position > 0, concept_id, position;
