-- search_concepts: a site's concepts whose code, description or a synonym contains a text,
-- best first: the exact code, then codes starting with it, then the earliest match in the
-- description, then synonym matches (matched_synonym: the first synonym holding the text).
-- params: site, text, n
WITH hits AS (
    SELECT c.code, c.description,
           (SELECT y.text FROM concept_synonyms AS y
            WHERE y.site = c.site AND y.concept_id = c.concept_id
              AND contains(lower(y.text), lower($text))
            ORDER BY y.position LIMIT 1) AS matched_synonym,
           contains(lower(c.code), lower($text)) AS in_code,
           strpos(lower(c.description), lower($text)) AS in_description
    FROM concepts AS c
    WHERE c.site = $site
)
SELECT code, description,
       CASE WHEN in_code OR in_description > 0 THEN NULL ELSE matched_synonym END
           AS matched_synonym
FROM hits
WHERE in_code OR in_description > 0 OR matched_synonym IS NOT NULL
ORDER BY lower(code) = lower($text) DESC,
         starts_with(lower(code), lower($text)) DESC,
         coalesce(nullif(in_description, 0), 1000000),
         length(description),
         code
LIMIT $n;
