-- review_candidates: each source concept's top candidates of one pair, with the target's
-- description and parent. params: source, target, top
SELECT c.source_code, c.rank, c.target_code, t.description AS target_description,
       t.parent_code AS target_parent, c.score
FROM candidates AS c
LEFT JOIN concepts AS t ON t.site = c.target_site AND t.code = c.target_code
WHERE c.source_site = $source AND c.target_site = $target AND c.rank <= $top
ORDER BY c.source_code, c.rank;
