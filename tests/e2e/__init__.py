"""End-to-end tests: the documentation's examples."""
