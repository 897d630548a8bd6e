"""Administrator pages: the tool's LTI configuration and the registered platforms."""
