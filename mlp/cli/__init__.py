"""The command line: Typer commands over `mlp.api`."""
