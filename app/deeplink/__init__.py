"""Deep Linking 2.0: placing catalogue modules into an LMS course from its "Select content"."""
