-- site_info: one site's stored vocabulary hash and size. params: site
SELECT site, vocab_sha256, n_concepts FROM sites WHERE site = $site;
