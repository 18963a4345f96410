"""Sites: vocabularies, events and patients read, validated and stored in the workspace."""
