"""The tars command line: thin Typer commands over library code."""
