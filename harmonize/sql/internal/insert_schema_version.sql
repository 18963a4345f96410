-- insert_schema_version: stamps a new workspace with its schema version. params: version
INSERT INTO workspace_info VALUES ($version);
