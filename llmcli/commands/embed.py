"""``llmcli embed``: vectors for texts, or the entries of a corpus nearest a query.

Vectors go to stdout (or ``--output``) as they finish; one line of counts goes to stderr.
A run that stops early (an error, Ctrl-C, SIGTERM, SIGHUP) keeps the vectors that finished,
as the longest finished prefix of the input, and says on stderr where it stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from llmcli.commands.boundary import command_boundary, report
from llmcli.commands.options import JsonOption, ModelOption, ProfileOption, backend
from llmcli.errors import LlmcliError, UsageError

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.embeddings.embedder import Embedder, EmbeddingRun
    from llmcli.embeddings.inputs import Embedding, EmbeddingInput
    from llmcli.embeddings.similarity import SimilarResult
    from llmcli.wire.client import Client


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
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Texts a request.")] = 32,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Requests in flight at once.")
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
        int, typer.Option("--top-k", "-k", min=1, help="How many --similar prints.")
    ] = 5,
    as_json: JsonOption = False,
) -> None:
    """Embed texts (llama-server started with --embeddings); --similar searches them."""
    from llmcli.embeddings.embedder import check_embeddings_supported

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
        settings = _Settings(model, batch_size, concurrency, truncate)
        if similar is not None:
            found = _find_hits(chosen, settings, similar, inputs, top_k)
            _print_hits(found, as_json=as_json)
            cached = f" ({found.cached} cached)" if found.cached else ""
            _count(found.inputs, cached, found.dimensions, found.tokens)
            return
        run = _embed_and_write(chosen, settings, inputs, output_format, output)
        if run.truncated:
            from llmcli.ui.sanitize import neutralize

            shown = ", ".join(neutralize(str(item)) for item in run.truncated[:5])
            more = ", ..." if len(run.truncated) > 5 else ""
            report(f"cut {len(run.truncated)} text(s) to {run.limit} tokens: {shown}{more}")
        _count(len(run.embeddings), "", run.dimensions, run.tokens)


def read_inputs(texts: list[str] | None, file: Path | None) -> list[EmbeddingInput]:
    """The texts from the arguments, else the file, else stdin; blank lines skipped."""
    from llmcli.embeddings.inputs import inputs_from_lines, inputs_from_texts, read_input_file

    if texts and file is not None:
        raise UsageError("give texts as arguments or --file, not both")
    if texts:
        return inputs_from_texts(texts)
    if file is not None:
        inputs = read_input_file(file)
    else:
        from llmcli.ui.stdin_text import read_stdin_text

        piped = read_stdin_text(report)
        inputs = [] if piped is None else inputs_from_lines(piped)
    if not inputs:
        raise UsageError(
            "no input: give texts as arguments, --file FILE, or lines on stdin"
            " (ls | llmcli embed); blank lines do not count"
        )
    return inputs


@dataclass(frozen=True, slots=True)
class _Settings:
    model: str | None
    batch_size: int
    concurrency: int
    truncate: bool

    def embedder(self, client: Client) -> Embedder:
        from llmcli.embeddings.embedder import Embedder

        return Embedder(
            client,
            model=self.model,
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            truncate=self.truncate,
        )


def _embed_and_write(
    profile: Profile,
    settings: _Settings,
    inputs: list[EmbeddingInput],
    output_format: OutputFormat,
    output: Path | None,
) -> EmbeddingRun:
    """Embed and write the vectors as they finish; a run that stops keeps its finished prefix.

    Stopped by an error, Ctrl-C, SIGTERM or SIGHUP, the output holds the longest run of
    finished inputs from the first, in input order (json and npy: as a whole, valid
    document), and the one error line says how far it got.
    """
    import asyncio

    from llmcli.embeddings.output import EmbeddingWriter
    from llmcli.endings import SignalEnding

    sink = _Output(output)
    writer = EmbeddingWriter(output_format.value, sink.write)
    try:
        try:
            run = asyncio.run(_embed(profile, settings, inputs, writer.add))
        except (LlmcliError, KeyboardInterrupt, SignalEnding) as ending:
            writer.finish()
            if writer.count:
                where = f"stopped after {writer.count} of {len(inputs)} texts: "
                raise _ended(ending, where) from None
            if isinstance(ending, SignalEnding):
                raise _ended(ending) from None
            raise
        writer.finish()
    finally:
        sink.close()
    return run


def _ended(ending: BaseException, where: str = "") -> LlmcliError:
    """The one error line for a run that ended early, with the exit code of its cause."""
    from llmcli.commands.boundary import EXIT_INTERRUPTED
    from llmcli.endings import SignalEnding, ending_error

    if isinstance(ending, SignalEnding):
        return ending_error(ending, where)
    if isinstance(ending, KeyboardInterrupt):
        error = LlmcliError(f"{where}interrupted")
        error.exit_code = EXIT_INTERRUPTED
        return error
    assert isinstance(ending, LlmcliError)
    ending.message = where + ending.message  # same error, kind and exit code; told where
    return ending


def _find_hits(
    profile: Profile, settings: _Settings, query: str, corpus: list[EmbeddingInput], top_k: int
) -> SimilarResult:
    import asyncio

    from llmcli.endings import SignalEnding

    try:
        return asyncio.run(_find(profile, settings, query, corpus, top_k))
    except SignalEnding as ending:
        raise _ended(ending) from None


class _Output:
    """stdout, or ``--output FILE``, opened at the first write and flushed at every one.

    Opening late leaves an existing file as it was when nothing finished.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stream: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(data)
            self.stream.flush()
        except OSError as error:
            where = "stdout" if self.path is None else str(self.path)
            raise UsageError(f"cannot write {where}: {error.strerror or error}") from None

    def _open(self) -> BinaryIO:
        if self.path is not None:
            return self.path.open("wb")
        sys.stdout.flush()
        return sys.stdout.buffer

    def close(self) -> None:
        if self.stream is not None and self.path is not None:
            self.stream.close()


async def _embed(
    profile: Profile,
    settings: _Settings,
    inputs: list[EmbeddingInput],
    on_prefix: Callable[[Sequence[Embedding]], None],
) -> EmbeddingRun:
    from llmcli.endings import run_until_signalled
    from llmcli.wire.client import Client

    async def embed() -> EmbeddingRun:
        async with Client(profile) as client:
            return await settings.embedder(client).embed(inputs, on_prefix=on_prefix)

    return await run_until_signalled(embed())


async def _find(
    profile: Profile,
    settings: _Settings,
    query: str,
    corpus: list[EmbeddingInput],
    top_k: int,
) -> SimilarResult:
    from llmcli.embeddings.cache import EmbeddingCache
    from llmcli.embeddings.similarity import find_similar
    from llmcli.endings import run_until_signalled
    from llmcli.wire.client import Client

    async def find() -> SimilarResult:
        async with Client(profile) as client:
            embedder = settings.embedder(client)
            return await find_similar(embedder, query, corpus, cache, top_k=top_k)

    with EmbeddingCache.open() as cache:
        return await run_until_signalled(find())


def _print_hits(found: SimilarResult, *, as_json: bool) -> None:
    from llmcli.ui.sanitize import dumps_json, neutralize

    if as_json:
        records = [
            {"rank": rank, "score": hit.score, "id": hit.id, "text": hit.text}
            for rank, hit in enumerate(found.hits, 1)
        ]
        print(dumps_json(records))
        return
    for hit in found.hits:
        # One hit a line: a line break inside a text is shown, not obeyed.
        text = neutralize(hit.text).replace("\n", "\u2424")
        print(f"{hit.score:.4f}  {neutralize(str(hit.id))}  {text}")


def _count(inputs: int, note: str, dimensions: int, tokens: int | None) -> None:
    noun = "input" if inputs == 1 else "inputs"
    used = "tokens not reported" if tokens is None else f"{tokens} tokens"
    sys.stderr.write(f"{inputs} {noun}{note}, {dimensions} dimensions, {used}\n")
