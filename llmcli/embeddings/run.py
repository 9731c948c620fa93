"""``llmcli embed``'s work: read the inputs, embed them and write the vectors, or search them.

Vectors go to stdout (or a file) as they finish; one line of counts goes to stderr. A run
that stops early (an error, Ctrl-C, SIGTERM, SIGHUP) keeps the vectors that finished, as
the longest finished prefix of the input, and its error says where it stopped: a
:class:`RunInterrupted` for Ctrl-C (the command gives it its exit code), else the
``LlmcliError`` the command boundary reports.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from llmcli.errors import LlmcliError, UsageError

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.embeddings.embedder import Embedder, EmbeddingRun
    from llmcli.embeddings.inputs import Embedding, EmbeddingInput
    from llmcli.embeddings.output import OutputKind
    from llmcli.embeddings.similarity import SimilarResult
    from llmcli.wire.client import Client


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C after some vectors were written; ``where`` says how far the run got."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


@dataclass(frozen=True, slots=True)
class EmbedSettings:
    """How to ask: the model, texts a request, requests in flight, cut or fail long texts."""

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
        from llmcli.ui.notices import report
        from llmcli.ui.stdin_text import read_stdin_text

        piped = read_stdin_text(report)
        inputs = [] if piped is None else inputs_from_lines(piped)
    if not inputs:
        raise UsageError(
            "no input: give texts as arguments, --file FILE, or lines on stdin"
            " (ls | llmcli embed); blank lines do not count"
        )
    return inputs


def write_embeddings(
    profile: Profile,
    settings: EmbedSettings,
    inputs: list[EmbeddingInput],
    kind: OutputKind,
    output: Path | None,
) -> None:
    """Embed ``inputs`` and write the vectors to ``output`` (``None``: stdout), then count them."""
    from llmcli.ui.notices import report
    from llmcli.ui.sanitize import neutralize

    run = embed_and_write(profile, settings, inputs, kind, output)
    if run.truncated:
        shown = ", ".join(neutralize(str(item)) for item in run.truncated[:5])
        more = ", ..." if len(run.truncated) > 5 else ""
        report(f"cut {len(run.truncated)} text(s) to {run.limit} tokens: {shown}{more}")
    _count(len(run.embeddings), "", run.dimensions, run.tokens)


def search_similar(
    profile: Profile,
    settings: EmbedSettings,
    query: str,
    corpus: list[EmbeddingInput],
    *,
    top_k: int,
    as_json: bool,
) -> None:
    """Print the ``top_k`` entries of ``corpus`` nearest ``query``, then count them."""
    found = find_hits(profile, settings, query, corpus, top_k)
    print_hits(found, as_json=as_json)
    cached = f" ({found.cached} cached)" if found.cached else ""
    _count(found.inputs, cached, found.dimensions, found.tokens)


def embed_and_write(
    profile: Profile,
    settings: EmbedSettings,
    inputs: list[EmbeddingInput],
    kind: OutputKind,
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

    sink = OutputSink(output)
    writer = EmbeddingWriter(kind, sink.write)
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


def _ended(ending: BaseException, where: str = "") -> BaseException:
    """The one error for a run that ended early, with the exit code of its cause."""
    from llmcli.endings import SignalEnding, ending_error

    if isinstance(ending, SignalEnding):
        return ending_error(ending, where)
    if isinstance(ending, KeyboardInterrupt):
        return RunInterrupted(where)
    assert isinstance(ending, LlmcliError)
    ending.message = where + ending.message  # same error, kind and exit code; told where
    return ending


def find_hits(
    profile: Profile, settings: EmbedSettings, query: str, corpus: list[EmbeddingInput], top_k: int
) -> SimilarResult:
    """The ``top_k`` nearest ``query``; the corpus's vectors come from, and go to, the cache."""
    import asyncio

    from llmcli.endings import SignalEnding

    try:
        return asyncio.run(_find(profile, settings, query, corpus, top_k))
    except SignalEnding as ending:
        raise _ended(ending) from None


class OutputSink:
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
    settings: EmbedSettings,
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
    settings: EmbedSettings,
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


def print_hits(found: SimilarResult, *, as_json: bool) -> None:
    """The hits on stdout: one line each (score, id, text), or one JSON array."""
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
