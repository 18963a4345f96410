-- site_texts_sha256: a content hash of a site's codes, names and synonyms (what its index is
-- built from), computed in buckets of 65536 concepts so no text of the whole site is built.
-- params: site
WITH texts AS (
    SELECT concept_id, 0 AS position, code || chr(31) || description AS t
    FROM concepts WHERE site = $site
    UNION ALL
    SELECT concept_id, position, chr(29) || text AS t
    FROM concept_synonyms WHERE site = $site
), buckets AS (
    SELECT concept_id // 65536 AS bucket,
           sha256(string_agg(t, chr(30) ORDER BY concept_id, position)) AS h
    FROM texts GROUP BY bucket
)
SELECT sha256(coalesce(string_agg(h, '' ORDER BY bucket), '')), (SELECT count(*) FROM concepts WHERE site = $site)
FROM buckets;
