-- codes_present: which of a list of codes a site has.
-- params: site, codes
SELECT code FROM concepts WHERE site = $site AND list_contains($codes, code);
