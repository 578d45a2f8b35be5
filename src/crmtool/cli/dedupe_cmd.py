"""CLI commands of the dedupe feature (registered on the main app)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this feature's commands to ``app``."""
