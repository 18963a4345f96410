-- delete_site_concepts: removes one site's rows from concepts (before the site is re-added).
-- params: site
DELETE FROM concepts WHERE site = $site;
