"""Tool calling: tools a model may call, and the loop that runs its calls and answers back.

Modules, one job each, lower ones first:

- ``tool``: :class:`Tool` (a definition plus the coroutine that runs it), :class:`ToolError`
  (a failure the model is told about), :class:`ToolRun` (one call's result) and the
  confirmation types.
- ``schema``: the small part of JSON Schema that tool arguments are checked against.
- ``calculator``: arithmetic from an ``ast`` walk, never ``eval``.
- ``files``: a directory tools are confined to; ``read_file`` and ``list_dir`` inside it.
- ``process``: a subprocess with a time limit and an output cap.
- ``builtin``: the demo tools (calculator, now, read_file, list_dir, python).
- ``user``: tools a user declares in a TOML or JSON file (a schema and a command).
- ``toolbox``: the tools on offer; runs one answer's calls concurrently, every failure
  turned into an ``{"error": ...}`` result.
- ``catalog``: which tools a run offers (built-ins, a tools file, ``--tool``).
- ``confirm``: asking the user before a call that is not safe by construction runs.
- ``loop``: the conversation loop: ask, run the calls, send the results, repeat.
- ``display``: the loop on the terminal (rich; reuses ``render.AnswerPrinter``).
- ``history``: the loop's conversation recorded in the history store.
- ``session``: one ``tools-demo`` run: the toolbox, the loop under SIGTERM and SIGHUP, the
  transcript as JSON and in the history.

Nothing here imports httpx except through ``llmcli.wire.client``, and only ``loop`` talks to it.
"""
