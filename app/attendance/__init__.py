"""Attendance at the in-person (or virtual fallback) sessions: the core trainer's marking
sheet, rotating check-in codes with a QR code, and the attendance score of each learner."""
