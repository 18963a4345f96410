-- delete_site_events: removes one site's rows from events (before the site is re-added).
-- params: site
DELETE FROM events WHERE site = $site;
