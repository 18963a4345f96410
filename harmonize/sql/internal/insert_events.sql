-- insert_events: copies the registered relation new_events into events. params: site
INSERT INTO events SELECT $site, subject_id, time, code, value FROM new_events;
