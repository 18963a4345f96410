-- schema_version: the schema version this workspace was created with. params: none
SELECT schema_version FROM workspace_info;
