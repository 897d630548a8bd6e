"""People, courses, resource links, memberships and web sessions created by launches."""
