"""A tenant's module catalogue: the shipped Decision-4660 modules and local topics, versioned."""
