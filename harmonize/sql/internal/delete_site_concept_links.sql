-- delete_site_concept_links: removes one site's rows from concept_links (before the site is re-added).
-- params: site
DELETE FROM concept_links WHERE site = $site;
