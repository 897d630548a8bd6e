"""Completion certificates: PDF, a unique code with a QR code, public verification."""
