-- site_occurrences: which subjects have which codes at one site: events whose value does not
-- say the finding was absent or missing (the patient-table values A and M). params: site
SELECT DISTINCT subject_id, code
FROM events
WHERE site = $site AND (value IS NULL OR value NOT IN ('A', 'M'));
