"""One module per subcommand: parse arguments, wire the layers, map errors to exit codes.

Command modules import only typer and the standard library at top level; httpx, rich and
prompt-toolkit are imported inside the functions that need them, so ``llmcli --help``
stays fast.
"""
