-- delete_site_sites: removes one site's rows from sites (before the site is re-added).
-- params: site
DELETE FROM sites WHERE site = $site;
