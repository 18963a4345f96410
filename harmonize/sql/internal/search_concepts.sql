-- search_concepts: a site's concepts whose code or description contains a text, best first:
-- the exact code, then codes starting with it, then the earliest match in the description.
-- params: site, text, n
SELECT code, description
FROM concepts
WHERE site = $site
  AND (contains(lower(code), lower($text)) OR contains(lower(description), lower($text)))
ORDER BY lower(code) = lower($text) DESC,
         starts_with(lower(code), lower($text)) DESC,
         coalesce(nullif(strpos(lower(description), lower($text)), 0), 1000000),
         length(description),
         code
LIMIT $n;
