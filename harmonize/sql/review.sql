-- review: a pair's mappings no person has decided on yet, least confident first.
-- params: source, target
SELECT m.source_code, s.description AS source_description, m.target_code,
       t.description AS target_description, m.score, m.method,
       -- what a vocabulary target adds: the synonym that matched, the non-standard concept
       -- whose 'Maps to' was followed, and the concept's OMOP fields (NULL elsewhere)
       x.matched_text, x.via_code,
       json_extract_string(t.extra, '$.concept_code') AS target_concept_code,
       json_extract_string(t.extra, '$.vocabulary_id') AS target_vocabulary,
       json_extract_string(t.extra, '$.domain_id') AS target_domain,
       json_extract_string(t.extra, '$.concept_class_id') AS target_class
FROM mappings AS m
LEFT JOIN concepts AS s ON s.site = m.source_site AND s.code = m.source_code
LEFT JOIN concepts AS t ON t.site = m.target_site AND t.code = m.target_code
LEFT JOIN matches AS x
  ON x.source_site = m.source_site AND x.target_site = m.target_site
 AND x.source_code = m.source_code AND x.target_code = m.target_code
WHERE m.source_site = $source AND m.target_site = $target
  AND NOT EXISTS (
      SELECT 1 FROM decisions AS d
      WHERE d.source_site = m.source_site AND d.target_site = m.target_site
        AND d.source_code = m.source_code
  )
ORDER BY m.score ASC, m.source_code;
