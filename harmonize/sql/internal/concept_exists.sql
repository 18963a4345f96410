-- concept_exists: 1 when a site has the code. params: site, code
SELECT 1 FROM concepts WHERE site = $site AND code = $code;
