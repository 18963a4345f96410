-- athena_vocabularies: the vocabulary_ids VOCABULARY.csv lists.
-- params: path, columns
SELECT DISTINCT vocabulary_id
FROM read_csv($path, delim = '\t', quote = '', escape = '', header = true,
              auto_detect = false, columns = $columns)
ORDER BY vocabulary_id;
