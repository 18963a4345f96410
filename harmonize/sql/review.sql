-- review: a pair's mappings no person has decided on yet (a concept whose newest decision is a
-- rejection comes back with its new proposal), least confident first; margin is the score's
-- lead over the next candidate's.
-- params: source, target
WITH latest AS (
    SELECT source_code, decision FROM decisions
    WHERE source_site = $source AND target_site = $target
    QUALIFY row_number() OVER (PARTITION BY source_code ORDER BY decided_at DESC) = 1
),
runner_up AS (
    SELECT c.source_code, max(c.score) AS score
    FROM candidates AS c
    JOIN mappings AS m ON m.source_site = c.source_site AND m.target_site = c.target_site
        AND m.source_code = c.source_code AND m.target_code <> c.target_code
    WHERE c.source_site = $source AND c.target_site = $target
    GROUP BY c.source_code
)
SELECT m.source_code, s.description AS source_description, s.parent_code AS source_parent,
       m.target_code, t.description AS target_description, m.score, m.method, m.confidence,
       m.score - r.score AS margin,
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
LEFT JOIN latest AS l ON l.source_code = m.source_code
LEFT JOIN runner_up AS r ON r.source_code = m.source_code
WHERE m.source_site = $source AND m.target_site = $target
  AND (l.decision IS NULL OR l.decision = 'reject')
ORDER BY m.confidence ASC NULLS FIRST, m.score ASC, m.source_code;
