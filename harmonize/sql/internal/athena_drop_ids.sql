-- athena_drop_ids: drops temp table athena_ids.
-- params: none
DROP TABLE athena_ids;
