"""abtest: simulated online A/B tests and offline replay for multi-scenario recall models."""

__version__ = "0.1.0"
