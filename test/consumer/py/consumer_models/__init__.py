"""The consumer app's own Python code."""
