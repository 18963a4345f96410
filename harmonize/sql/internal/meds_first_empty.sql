-- meds_first_empty: the first row of the MEDS data files with no subject_id or no code: its file, row (0-based) and column.
-- params: files
SELECT
    filename,
    file_row_number,
    CASE WHEN subject_id IS NULL THEN 'subject_id' ELSE 'code' END
FROM read_parquet($files, union_by_name = true, filename = true, file_row_number = true)
WHERE subject_id IS NULL OR code IS NULL OR TRIM(code) = ''
ORDER BY filename, file_row_number
LIMIT 1;
