-- site_levels: a site's declared level texts. params: site
SELECT code, value, text FROM level_texts WHERE site = $site;
