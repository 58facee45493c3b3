"""notifybot: HireHop webhooks to Slack, Telegram, email and console notifications."""

__version__ = "0.1.0"
