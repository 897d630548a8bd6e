"""What people follow at a glance: a teacher's own 7-2-7 timeline, and a core trainer's cohort
on one screen with its at-risk flags."""
