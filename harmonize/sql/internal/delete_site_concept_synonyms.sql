-- delete_site_concept_synonyms: removes one site's rows from concept_synonyms (before the site is re-added).
-- params: site
DELETE FROM concept_synonyms WHERE site = $site;
