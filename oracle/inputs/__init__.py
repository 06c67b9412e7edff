"""What goes in: input specs, their hypothesis strategies, domains, annotations."""
