-- delete_site_site_tasks: removes one site's rows from site_tasks (before the site is re-added).
-- params: site
DELETE FROM site_tasks WHERE site = $site;
