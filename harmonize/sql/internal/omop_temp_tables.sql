-- omop_temp_tables: the OMOP reader's working tables: events (standard or source codes), the concept_ids in use and their concepts.
-- params: none
-- tbl is the event table's position in harmonize.sites.omop_tables.EVENT_TABLES.
CREATE TEMP TABLE omop_events (
    tbl INTEGER, person BIGINT, time TIMESTAMP, concept BIGINT, value VARCHAR
);
CREATE TEMP TABLE omop_source_events (
    tbl INTEGER, person BIGINT, time TIMESTAMP, code VARCHAR, source_concept BIGINT,
    concept BIGINT, value VARCHAR
);
CREATE TEMP TABLE omop_used_concepts (concept_id BIGINT);
CREATE TEMP TABLE omop_concepts (
    concept_id BIGINT, concept_name VARCHAR, vocabulary_id VARCHAR, domain_id VARCHAR,
    concept_code VARCHAR
);
