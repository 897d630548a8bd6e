"""Running several processes as one: leases for periodic work, readiness, metrics."""
