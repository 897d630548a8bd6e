"""Backups of one tenant (a platform and everything hanging off it) as JSON lines."""
