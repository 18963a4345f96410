-- site_count: how many sites a workspace holds. params: none
SELECT count(*) FROM sites;
