"""Building email messages from templates, checking them, and sending them."""
