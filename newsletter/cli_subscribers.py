"""`newsletter subscribers …` and `newsletter serve`: the organisers' list and the public pages."""

from __future__ import annotations

import click


@click.group()
def subscribers() -> None:
    """Keep the member list: list, add, remove, import, export."""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """The public pages behind NEWSLETTER_PUBLIC_URL: unsubscribe and sign-up."""
    raise click.ClickException("not available yet")
