-- site_list: every site with its concept, event and subject counts.
-- params: none
SELECT
    s.site,
    s.n_concepts,
    (SELECT count(*) FROM events AS e WHERE e.site = s.site) AS n_events,
    (SELECT count(DISTINCT e.subject_id) FROM events AS e WHERE e.site = s.site) AS n_subjects,
    s.vocab_sha256,
    s.vocab_file,
    s.added_at
FROM sites AS s
ORDER BY s.site;
