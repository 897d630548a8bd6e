"""Who is asking: the signed-in viewer behind every page after a launch."""
