"""Platform registrations (LMS instances) and their deployments: the tenants of blend727."""
