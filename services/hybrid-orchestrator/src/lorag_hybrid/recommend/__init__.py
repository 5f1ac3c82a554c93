"""Which training type fits a dataset and what it costs: profile, resources, estimate, rank."""
