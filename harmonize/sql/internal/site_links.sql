-- site_links: a site's 'Maps to' edges as rows of its concepts (source row, target row).
-- params: site
SELECT a.concept_id AS row, b.concept_id AS target_row
FROM concept_links AS l
JOIN concepts AS a ON a.site = l.site AND a.code = l.code
JOIN concepts AS b ON b.site = l.site AND b.code = l.target_code
WHERE l.site = $site AND l.relationship = 'Maps to'
ORDER BY a.concept_id, b.concept_id;
