-- task_labels: every labelled subject of a site (also those without events). params: site
SELECT subject_id, value AS label_value, split FROM labels WHERE site = $site ORDER BY subject_id;
