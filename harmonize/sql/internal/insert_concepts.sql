-- insert_concepts: copies the registered relation new_concepts into concepts. params: site
INSERT INTO concepts
SELECT $site, concept_id, code, description, system, parent_code, frequency, extra
FROM new_concepts;
