"""The built-in demonstration platform: a real LTI 1.3 platform (its own RSA key, OIDC auth
endpoint, signed id_tokens, JWKS) inside the tool, mounted only by ``blend727 demo``."""
