"""``llmcli embed``: vectors for texts, or the entries of a corpus nearest a query.

Vectors go to stdout (or ``--output``) as they finish; one line of counts goes to stderr.
A run that stops early (an error, Ctrl-C, SIGTERM, SIGHUP) keeps the vectors that finished,
as the longest finished prefix of the input, and says on stderr where it stopped. The work
is ``llmcli.embeddings.run``'s; this module checks the options and gives Ctrl-C its code.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from llmcli.commands.boundary import EXIT_INTERRUPTED, command_boundary
from llmcli.commands.options import JsonOption, ModelOption, ProfileOption, backend
from llmcli.errors import LlmcliError, UsageError


class OutputFormat(StrEnum):
    ndjson = "ndjson"
    json = "json"
    csv = "csv"
    npy = "npy"


@command_boundary
def embed(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TEXT...",
            help="Texts to embed; their ids are 1..n. Without them, --file or stdin: one"
            " text a line, blank lines skipped, a text's id is its line number.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help='Read texts from FILE: lines, or JSONL ({"text": .., "id": ..}) when it is'
            " named *.jsonl or starts with '{'.",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
    model: ModelOption = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            metavar="[ndjson|json|csv|npy]",
            help="ndjson and json: {id, text, embedding}; csv: id,dim0..; npy: a float32"
            " matrix (needs --output).",
        ),
    ] = OutputFormat.ndjson,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to FILE, not stdout.", show_default=False
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, metavar="INTEGER", help="Texts a request.")
    ] = 32,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, metavar="INTEGER", help="Requests in flight at once."),
    ] = 4,
    truncate: Annotated[
        bool,
        typer.Option(
            "--truncate",
            help="Cut texts longer than the server takes at once (llama-server: one"
            " ubatch, 512 tokens by default) instead of failing.",
        ),
    ] = False,
    similar: Annotated[
        str | None,
        typer.Option(
            "--similar",
            metavar="QUERY",
            help="Print the texts nearest QUERY by cosine similarity; their vectors are"
            " cached, so another query costs one request.",
            show_default=False,
        ),
    ] = None,
    top_k: Annotated[
        int,
        typer.Option("--top-k", "-k", min=1, metavar="INTEGER", help="How many --similar prints."),
    ] = 5,
    as_json: JsonOption = False,
) -> None:
    """Embed texts (llama-server started with --embeddings); --similar searches them.

    \b
    Examples:
      llmcli embed -p local "first text" "second text"
      llmcli embed -p local -f notes.txt --format npy -o notes.npy
      llmcli embed -p local -f notes.txt --similar "where are the keys?" -k 3
    """
    from llmcli.embeddings.embedder import check_embeddings_supported
    from llmcli.embeddings.run import (
        EmbedSettings,
        RunInterrupted,
        read_inputs,
        search_similar,
        write_embeddings,
    )

    with backend(profile) as chosen:
        check_embeddings_supported(chosen)
        if similar is None and as_json:
            raise UsageError("--json goes with --similar; for vectors use --format json")
        if similar is not None and (output is not None or output_format is not OutputFormat.ndjson):
            raise UsageError(
                "--similar prints its hits: drop --format and --output (--json for JSON)"
            )
        if output_format is OutputFormat.npy and output is None:
            raise UsageError("npy is binary: give --output FILE.npy")
        inputs = read_inputs(texts, file)
        settings = EmbedSettings(model, batch_size, concurrency, truncate)
        if similar is not None:
            search_similar(chosen, settings, similar, inputs, top_k=top_k, as_json=as_json)
            return
        try:
            write_embeddings(chosen, settings, inputs, output_format.value, output)
        except RunInterrupted as stopped:
            raise _interrupted(stopped.where) from None


def _interrupted(where: str) -> LlmcliError:
    """Ctrl-C after some vectors were written: where it stopped, with Ctrl-C's exit code."""
    error = LlmcliError(f"{where}interrupted")
    error.exit_code = EXIT_INTERRUPTED
    return error
