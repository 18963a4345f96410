-- mapping_summary: per mapped site pair, how many source concepts are mapped and how well.
-- params: none
SELECT
    m.source_site,
    m.target_site,
    any_value(m.method) AS method,
    count(*) AS n_mapped,
    (SELECT count(*) FROM concepts AS c WHERE c.site = m.source_site) AS n_source_concepts,
    round(count(*) / (SELECT count(*) FROM concepts AS c WHERE c.site = m.source_site), 3) AS coverage,
    round(avg(m.score), 3) AS mean_score,
    round(min(m.score), 3) AS min_score,
    count(DISTINCT m.target_code) AS n_target_codes_used,
    max(m.created_at) AS mapped_at
FROM mappings AS m
GROUP BY m.source_site, m.target_site
ORDER BY m.source_site, m.target_site;
