-- review: a pair's mappings no person has decided on yet, least confident first.
-- params: source, target
SELECT m.source_code, s.description AS source_description, m.target_code,
       t.description AS target_description, m.score, m.method
FROM mappings AS m
LEFT JOIN concepts AS s ON s.site = m.source_site AND s.code = m.source_code
LEFT JOIN concepts AS t ON t.site = m.target_site AND t.code = m.target_code
WHERE m.source_site = $source AND m.target_site = $target
  AND NOT EXISTS (
      SELECT 1 FROM decisions AS d
      WHERE d.source_site = m.source_site AND d.target_site = m.target_site
        AND d.source_code = m.source_code
  )
ORDER BY m.score ASC, m.source_code;
