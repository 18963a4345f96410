-- athena_quiet: no progress bar on this connection (the CLI prints only its message).
-- params: none
SET enable_progress_bar = false;
