-- delete_site_level_texts: removes one site's rows from level_texts (before the site is re-added).
-- params: site
DELETE FROM level_texts WHERE site = $site;
