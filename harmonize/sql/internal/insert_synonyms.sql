-- insert_synonyms: copies the registered relation new_synonyms into concept_synonyms. params: site
INSERT INTO concept_synonyms
SELECT $site, concept_id, position, text
FROM new_synonyms;
