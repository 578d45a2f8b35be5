"""Email address classification: syntax, risk reasons, MX, bounces."""
