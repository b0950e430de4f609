"""CI gates (`sdnas check`): gate profiles, artifact identity checks, and JUnit/Markdown/JSON reports."""
