"""Small helpers shared across the toolkit."""
