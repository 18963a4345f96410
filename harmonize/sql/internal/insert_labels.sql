-- insert_labels: copies the registered relation new_labels into labels. params: site
INSERT INTO labels SELECT $site, subject_id, label, value, split FROM new_labels;
