-- unmapped: the source site's concepts that have no mapping onto the target site.
-- params: source, target
SELECT c.code, c.description
FROM concepts AS c
WHERE c.site = $source
  AND NOT EXISTS (
      SELECT 1 FROM mappings AS m
      WHERE m.source_site = $source AND m.target_site = $target AND m.source_code = c.code
  )
ORDER BY c.concept_id;
