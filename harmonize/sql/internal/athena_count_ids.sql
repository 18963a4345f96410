-- athena_count_ids: how many concepts the site keeps.
-- params: none
SELECT count(*) FROM athena_kept;
