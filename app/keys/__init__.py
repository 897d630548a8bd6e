"""The tool's own signing keys (published at /lti/jwks.json) and its generated secret."""
