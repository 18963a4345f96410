-- insert_matches: copies the registered relation new_matches into matches. params: none
INSERT INTO matches
SELECT source_site, source_code, target_site, target_code, matched_text, via_code, run_id
FROM new_matches;
