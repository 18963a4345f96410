-- delete_site_labels: removes one site's rows from labels (before the site is re-added).
-- params: site
DELETE FROM labels WHERE site = $site;
