-- workspace_tables: how many tables and views the database has, and whether one of them is
-- workspace_info (which holds the schema version). params: none
SELECT
    count(*) AS n_tables,
    count(*) FILTER (WHERE table_name = 'workspace_info') AS has_version
FROM information_schema.tables
WHERE table_schema = 'main';
