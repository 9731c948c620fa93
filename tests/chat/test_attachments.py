"""Attachments (``llmcli.chat.attachments``): globs, the size cap, binary refused, images told
by their first bytes, fences no file can close, and the vision check against the mock's
and the real llama-server's ``/props``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest
from rig import LlamaServer
from rig.profiles import make_profile

from llmcli.chat.attachments import (
    Attachment,
    build_message,
    expand_patterns,
    fence_for,
    image_type,
    load_attachments,
    read_attachment,
    refuse_without_vision,
    text_block,
    unpack_message,
)
from llmcli.errors import UsageError
from llmcli.mock import MockConfig, MockServerThread
from llmcli.wire.client import Client

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(20)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("# notes\nsee ```code``` here\n")
    (tmp_path / "b.txt").write_text("bee")
    (tmp_path / "a.txt").write_text("ay")
    (tmp_path / "shot.png").write_bytes(PNG)
    (tmp_path / "blob.bin").write_bytes(b"ab\x00cd")
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "sub").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("text", "fence"),
    [
        ("", "```"),
        ("plain", "```"),
        ("one ` tick", "```"),
        ("```python\nx\n```", "````"),
        ("a ```` b ``` c", "`````"),
        ("``````", "```````"),
    ],
)
def test_the_fence_is_longer_than_any_backtick_run(text: str, fence: str) -> None:
    assert fence_for(text) == fence


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF87a....", "image/gif"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),  # a RIFF that is not WebP
        (b"\x89PNG", None),  # a cut signature
        (b"hello", None),
        (b"", None),
    ],
)
def test_images_are_told_by_their_first_bytes(data: bytes, mime: str | None) -> None:
    assert image_type(data) == mime


def test_a_text_file_is_fenced_and_labelled(files: Path) -> None:
    (attachment,) = load_attachments(["notes.md"])
    assert attachment.text == "# notes\nsee ```code``` here\n"
    assert text_block(attachment) == "File: notes.md\n````\n# notes\nsee ```code``` here\n````"
    assert attachment.sha256 == hashlib.sha256((files / "notes.md").read_bytes()).hexdigest()


def test_a_file_without_a_final_newline_still_closes_its_fence(files: Path) -> None:
    (attachment,) = load_attachments(["a.txt"])
    assert text_block(attachment) == "File: a.txt\n```\nay\n```"


def test_a_byte_order_mark_is_dropped(files: Path) -> None:
    (files / "bom.txt").write_bytes(b"\xef\xbb\xbfhello")
    assert load_attachments(["bom.txt"])[0].text == "hello"


def test_a_glob_expands_in_order_and_each_file_comes_once(files: Path) -> None:
    found = expand_patterns(["*.txt", "a.txt", "./b.txt"])
    assert [label for _, label in found] == ["a.txt", "b.txt", "latin.txt"]


def test_a_file_named_like_a_glob_is_that_file(files: Path) -> None:
    (files / "[draft].md").write_text("d")
    assert [label for _, label in expand_patterns(["[draft].md"])] == ["[draft].md"]


def test_a_glob_skips_directories(files: Path) -> None:
    assert [label for _, label in expand_patterns(["s*"])] == ["shot.png"]


def test_a_glob_that_matches_no_file_is_one_line(files: Path) -> None:
    with pytest.raises(UsageError, match=r"^\*\.pdf: no file matches$"):
        expand_patterns(["*.pdf"])
    with pytest.raises(UsageError, match="no file matches"):
        expand_patterns(["sub*"])  # only a directory matches


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.txt", r"^missing\.txt: no such file$"),
        ("blob.bin", r"^blob\.bin: a binary file \(a NUL byte at offset 2\); only text"),
        ("latin.txt", r"^latin\.txt: not UTF-8 text \(byte 0xe9 at offset 3\)"),
        ("sub", r"^sub: a directory; attach its files \(e\.g\. sub/\*\.md\)$"),
    ],
)
def test_files_that_cannot_be_attached_are_one_line_naming_them(
    files: Path, name: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load_attachments([name])


def test_a_file_over_the_cap_is_refused_and_says_how_to_raise_it(files: Path) -> None:
    (files / "big.txt").write_text("x" * 2048)
    with pytest.raises(UsageError, match=r"big\.txt: 2\.0 KiB, more than the 1\.0 KiB") as error:
        load_attachments(["big.txt"], env={"LLMCLI_MAX_INPUT": "1K"})
    assert "LLMCLI_MAX_INPUT" in str(error.value)
    assert load_attachments(["big.txt"], env={"LLMCLI_MAX_INPUT": "2K"})[0].size == 2048


def test_a_file_that_cannot_be_read_is_one_line(files: Path) -> None:
    with pytest.raises(UsageError, match=r"^a\.txt/x: cannot read: Not a directory$"):
        load_attachments(["a.txt/x"])


def test_a_file_name_with_control_characters_is_made_inert(files: Path) -> None:
    name = "evil\x1b[2Jname\n.txt"
    (files / name).write_text("hi")
    (attachment,) = load_attachments(["evil*"])
    assert "\x1b" not in attachment.name and "\n" not in attachment.name
    assert attachment.name == "evil␛[2Jname .txt"


def test_an_image_becomes_a_data_url_part_and_the_text_names_it(files: Path) -> None:
    attachments = load_attachments(["shot.png", "a.txt"])
    message = build_message("what is this?", attachments)
    assert message.text == "what is this?\n\nFile: a.txt\n```\nay\n```\n\nImage: shot.png"
    assert isinstance(message.content, list)
    text, image = message.content
    assert text == {"type": "text", "text": message.text}
    url = image["image_url"]["url"]
    assert image["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG


def test_the_history_keeps_names_types_sizes_and_hashes_never_bytes(files: Path) -> None:
    message = build_message("look", load_attachments(["shot.png", "a.txt"]))
    stored = message.stored_attachments()
    assert [(a.name, a.mime, a.bytes) for a in stored] == [
        ("shot.png", "image/png", len(PNG)),
        ("a.txt", "text/plain", 2),
    ]
    assert stored[0].sha256 == hashlib.sha256(PNG).hexdigest()
    assert "base64" not in message.text


def test_no_attachments_leave_the_text_alone() -> None:
    message = build_message("  hi\n", [])
    assert (message.content, message.text, message.attachments) == ("  hi\n", "  hi\n", ())


def test_a_message_too_big_with_its_files_is_refused() -> None:
    attachment = Attachment("n.txt", 600, "0" * 64, text="x" * 600)
    with pytest.raises(UsageError, match=r"more than the 1,000 allowed; attach less"):
        build_message("y" * 500, [attachment], limit=1000)


def test_wrap_gets_the_whole_text_files_included() -> None:
    attachment = Attachment("n.txt", 2, "0" * 64, text="hi")
    message = build_message("", [attachment], wrap=lambda whole: f"<{whole}>")
    assert message.text == "<File: n.txt\n```\nhi\n```>"


def test_read_attachment_reads_no_more_than_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("abc")
    assert read_attachment(path, "x.txt", 3).text == "abc"
    with pytest.raises(UsageError, match="more than the 2 bytes"):
        read_attachment(path, "x.txt", 2)


# -- asking the server whether it sees images ---------------------------------------------


def _image() -> Attachment:
    return Attachment("shot.png", len(PNG), "0" * 64, mime="image/png", data=PNG)


def _check(base_url: str, attachments: list[Attachment], dialect: str | None) -> None:
    async def run() -> None:
        async with Client(make_profile(base_url, dialect=dialect)) as client:
            await refuse_without_vision(client, attachments)

    asyncio.run(run())


def test_llamacpp_without_vision_refuses_an_image_before_sending() -> None:
    with MockServerThread(MockConfig(dialect="llamacpp")) as mock:
        with pytest.raises(UsageError, match=r"^shot\.png is an image, and the server"):
            _check(mock.base_url, [_image()], "llamacpp")
        assert [r.path for r in mock.server.requests] == ["/props"]


def test_text_files_alone_do_not_ask_the_server() -> None:
    with MockServerThread(MockConfig(dialect="llamacpp")) as mock:
        _check(mock.base_url, [Attachment("a.txt", 1, "0" * 64, text="a")], "llamacpp")
        assert mock.server.requests == []


def test_zen_is_not_asked_its_own_answer_says() -> None:
    with MockServerThread(MockConfig(dialect="zen")) as mock:
        _check(mock.base_url, [_image()], "zen")
        assert mock.server.requests == []


def test_a_server_without_props_gets_the_image() -> None:
    with MockServerThread(MockConfig(dialect="zen")) as mock:  # answers /props with 404
        _check(mock.base_url, [_image()], "openai")
        assert [r.path for r in mock.server.requests] == ["/props"]


def test_the_real_llama_server_without_mmproj_is_refused(llama_plain: LlamaServer) -> None:
    with pytest.raises(UsageError, match="no vision"):
        _check(llama_plain.base_url, [_image()], None)


def _text_file(name: str, text: str) -> Attachment:
    data = text.encode()
    return Attachment(name, len(data), hashlib.sha256(data).hexdigest(), text=text)


@pytest.mark.parametrize(
    ("typed", "contents"),
    [
        ("what is this?", ["# Notes\n```sh\nmake\n```\n", "no final newline"]),
        ("", ["files alone"]),
        # A file that quotes another file's block, header and fence included.
        ("compare", ["File: b.md\n```\nx\n```\n", "plain\n"]),
        ("two\n\nparagraphs\n\nFile: a.md", ["a\n"]),
    ],
)
def test_a_sent_message_comes_apart_into_what_was_typed_and_its_files(
    typed: str, contents: list[str]
) -> None:
    files = [_text_file(f"{'ab'[i]}.md", text) for i, text in enumerate(contents)]
    png = Attachment(
        "shot.png", len(PNG), hashlib.sha256(PNG).hexdigest(), mime="image/png", data=PNG
    )
    message = build_message(typed, [*files, png])
    stored = message.stored_attachments()
    url = message.content[1]["image_url"]["url"]  # type: ignore[index]
    unpacked = unpack_message(message.text, stored, [url])
    assert unpacked.typed == typed
    assert [(f.name, f.text, f.size, f.sha256) for f in unpacked.files[:-1]] == [
        (f.name, f.text, f.size, f.sha256) for f in files
    ]
    assert unpacked.files[-1].data == PNG and unpacked.lost_images == ()
    # From the history alone (chat -c): the image's bytes are gone, and it says which.
    again = unpack_message(message.text, stored)
    assert again.typed == typed and [f.name for f in again.files] == [f.name for f in files]
    assert again.lost_images == ("shot.png",)


def test_a_message_a_template_shaped_comes_back_whole() -> None:
    files = [_text_file("a.md", "a\n")]
    message = build_message("hi", files, wrap=lambda text: f"Summarise:\n\n{text}\n\nThanks.")
    unpacked = unpack_message(message.text, message.stored_attachments())
    assert unpacked.typed == message.text and unpacked.files == ()


def test_a_file_without_a_size_is_read_only_to_the_cap_and_said_to_be_over_it() -> None:
    # /dev/zero says 0 bytes and never ends: reading stops at the cap, and the line does not
    # claim a size the file does not have.
    with pytest.raises(UsageError) as refused:
        read_attachment(Path("/dev/zero"), "/dev/zero", 1024)
    assert str(refused.value).startswith("/dev/zero: over the 1.0 KiB a file may have;")
