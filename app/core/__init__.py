"""Cross-cutting plumbing: database, errors, templates, translations, time."""
