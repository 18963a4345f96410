-- athena_drop_temp: drops the reader's temp tables.
-- params: none
DROP TABLE athena_parents;
DROP TABLE athena_kept;
