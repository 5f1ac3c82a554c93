"""python -m lorag_cli is the lorag command."""

from lorag_cli.main import app

app(prog_name="lorag")
