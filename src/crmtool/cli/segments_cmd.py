"""CLI commands of the segments feature (registered on the main app)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this feature's commands to ``app``."""
