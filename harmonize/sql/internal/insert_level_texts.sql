-- insert_level_texts: copies the registered relation new_levels into level_texts. params: site
INSERT INTO level_texts SELECT $site, code, value, text FROM new_levels;
