"""Each role's start page after a launch."""
