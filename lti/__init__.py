"""LTI 1.3 behind one door.

Everything that touches ``pylti1p3`` lives in this package; the rest of blend727 imports
plain functions and dataclasses from ``lti.login``, ``lti.launch``, ``lti.roles`` and
``lti.errors``. See ``docs/conventions.md``.
"""
