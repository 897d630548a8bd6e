"""blend727: an LTI 1.3 tool that runs Vietnam's 7-2-7 blended in-service teacher training."""

__version__ = "0.1.0"
