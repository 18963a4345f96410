-- athena_parents_empty: the empty temp table athena_parents (row, parent) athena_parents.sql fills.
-- params: none
CREATE OR REPLACE TEMP TABLE athena_parents (row INTEGER, parent VARCHAR);
