-- site_systems: the systems (vocabulary_ids) of a site's concepts.
-- params: site
SELECT DISTINCT system FROM concepts WHERE site = $site AND system IS NOT NULL ORDER BY system;
