"""The labs and benchmarks run end to end on tiny settings."""
