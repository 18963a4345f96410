-- import_delete_mappings: removes one pair's stored mappings of the codes in temp table
-- imported_mappings, before they are replaced.
-- params: source, target
DELETE FROM mappings
WHERE source_site = $source AND target_site = $target
    AND source_code IN (SELECT source_code FROM imported_mappings);
