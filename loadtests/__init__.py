"""Load for chaoslab: locust users (shoppers, duplicate storms) and load shapes (surge, steps)."""
