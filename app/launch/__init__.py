"""The LTI endpoints (/lti/login, /lti/launch, /lti/jwks.json) and what a launch writes."""
