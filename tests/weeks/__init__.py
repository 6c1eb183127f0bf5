"""The reference solutions against independent oracles, week by week."""
