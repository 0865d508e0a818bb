"""volt-agent: tails SMS gateway and messaging-app logs and ships message records to Volt Insights."""

__version__ = "0.1.0"
