"""Module results: component scores, Circular 19 classification, overrides and AGS mapping."""
