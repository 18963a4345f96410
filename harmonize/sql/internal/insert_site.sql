-- insert_site: records a site. params: site, vocab_file, vocab_sha256, n_concepts
INSERT INTO sites VALUES ($site, $vocab_file, $vocab_sha256, $n_concepts, now()::TIMESTAMP);
