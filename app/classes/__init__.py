"""Waves, classes, in-person sessions, enrolments, core-trainer cohorts, support periods and
the compliance rules computed over them."""
