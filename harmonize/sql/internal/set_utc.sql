-- set_utc: makes the connection's time zone UTC, so that a time with a zone is read as its UTC time.
-- params: none
SET TimeZone = 'UTC';
