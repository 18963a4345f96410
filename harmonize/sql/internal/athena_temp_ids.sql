-- athena_temp_ids: temp table athena_ids (Athena concept_id -> the site's row) of site $site.
-- params: site
CREATE OR REPLACE TEMP TABLE athena_ids AS
SELECT CAST(code AS BIGINT) AS id, concept_id AS row, description
FROM concepts
WHERE site = $site;
