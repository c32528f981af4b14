"""shop: the guide's reference e-commerce service, built on tailguard."""
