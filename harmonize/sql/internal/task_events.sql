-- task_events: a site's patient events with each subject's label and split.
-- params: site
SELECT e.subject_id, e.code, e.value, l.value AS label_value, l.split
FROM events AS e
JOIN labels AS l ON l.site = e.site AND l.subject_id = e.subject_id
WHERE e.site = $site
ORDER BY e.subject_id, e.code;
