"""The module catalogue (Decision 4660/QĐ-BGDĐT modules 1–9, teachers' and managers' tracks).

Filled by the 7-2-7 core issue: one data file per module and track under ``modules/data/``.
"""
