"""Imports of the files departments keep: the holiday calendar and class rosters (CSV/XLSX)."""
