-- omop_database_tables: the tables of an attached DuckDB file whose lower-case names are known OMOP tables.
-- params: catalog, known
SELECT table_schema, table_name
FROM information_schema.tables
WHERE table_catalog = $catalog AND list_contains($known, lower(table_name))
ORDER BY table_schema, table_name;
