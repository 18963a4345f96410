-- code_lookup: (source row, target row, system) where a source code equals, ignoring case,
-- blanks and dots, the code of a target concept in the same system: $code_system for every
-- row, else the source row's own system. A target's code is its concept_code (Athena sites)
-- or, with $code_system, its code; without $code_system only targets with a concept_code count.
-- params: source, target, code_system
SELECT s.concept_id AS source_row, t.concept_id AS target_row,
       coalesce($code_system, s.system) AS system
FROM concepts AS s
JOIN concepts AS t
  ON t.site = $target
 AND t.system = coalesce($code_system, s.system)
 AND upper(replace(trim(s.code), '.', '')) = upper(replace(trim(
         coalesce(json_extract_string(t.extra, '$.concept_code'),
                  CASE WHEN $code_system IS NOT NULL THEN t.code END)), '.', ''))
WHERE s.site = $source
ORDER BY source_row, target_row;
