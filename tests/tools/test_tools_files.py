"""read_file and list_dir stay inside their root: ``..``, absolute paths and symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmcli.tools.files import READ_CAP, Root
from llmcli.tools.tool import ToolError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with files, a subdirectory and symlinks in and out; outside/ beside it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "inside.txt").write_text("inside\n")
    (root / "sub" / "deep.txt").write_text("deep\n")
    (outside / "secret.txt").write_text("secret\n")
    (tmp_path / "beside.txt").write_text("beside\n")
    (root / "link_in").symlink_to("inside.txt")
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "rel_out").symlink_to("../outside/secret.txt")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    (root / "sub" / "escape").symlink_to("../../outside", target_is_directory=True)
    (root / "loop").symlink_to("loop")
    return root


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("inside.txt", "inside\n"),
        ("./inside.txt", "inside\n"),
        ("sub/deep.txt", "deep\n"),
        ("sub/../inside.txt", "inside\n"),
        ("sub/up/inside.txt", "inside\n"),  # a symlinked directory that stays inside
        ("link_in", "inside\n"),
    ],
)
def test_reads_inside(tree: Path, name: str, content: str) -> None:
    assert Root(tree).read_file(name) == content


def test_absolute_path_inside_the_root_is_fine(tree: Path) -> None:
    assert Root(tree).read_file(str(tree / "inside.txt")) == "inside\n"


@pytest.mark.parametrize(
    "name",
    [
        "../outside/secret.txt",
        "../beside.txt",
        "sub/../../beside.txt",
        "link_out",  # symlink to an absolute path outside
        "rel_out",  # symlink to a relative path outside
        "dir_out/secret.txt",  # symlinked directory mid-path
        "sub/escape/secret.txt",  # symlinked directory deeper down
        "sub/up/../beside.txt",  # ".." after a symlink applies to its target
        "dir_out/../beside.txt",
        "/etc/passwd",
        "/",
        "..",
        "../outside/missing.txt",  # refused whether or not it exists
    ],
)
def test_refuses_outside(tree: Path, name: str) -> None:
    root = Root(tree)
    with pytest.raises(ToolError, match="outside the directory"):
        root.read_file(name)
    with pytest.raises(ToolError, match="outside the directory"):
        root.list_dir(name)


def test_absolute_path_to_a_secret_outside(tree: Path) -> None:
    with pytest.raises(ToolError, match="outside the directory"):
        Root(tree).read_file(str(tree.parent / "outside" / "secret.txt"))


def test_root_given_through_a_symlink(tree: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree, target_is_directory=True)
    root = Root(alias)
    assert root.read_file("inside.txt") == "inside\n"
    with pytest.raises(ToolError, match="outside"):
        root.read_file("../outside/secret.txt")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.txt", "does not exist"),
        ("loop", "does not exist"),
        ("", "give a path relative to the root"),
        ("a\x00b", "give a path relative to the root"),
        ("sub", "is a directory: use list_dir"),
    ],
)
def test_read_errors(tree: Path, name: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        Root(tree).read_file(name)


def test_fifo_is_refused_without_hanging(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        Root(tree).read_file("pipe")


def test_size_cap(tree: Path) -> None:
    (tree / "big.txt").write_text("x" * (READ_CAP + 10))
    text = Root(tree).read_file("big.txt")
    assert text.startswith("x" * READ_CAP)
    assert text.endswith(f"[truncated: showing the first {READ_CAP} of {READ_CAP + 10} bytes]")
    (tree / "exact.txt").write_text("y" * READ_CAP)
    assert Root(tree).read_file("exact.txt") == "y" * READ_CAP


def test_cap_inside_a_utf8_sequence_drops_the_broken_tail(tree: Path) -> None:
    (tree / "accents.txt").write_text("é" * 10)  # 2 bytes each
    text = Root(tree).read_file("accents.txt", cap=5)
    assert text.startswith("éé\n[truncated")


def test_binary_file(tree: Path) -> None:
    (tree / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02")
    assert Root(tree).read_file("blob.bin") == "[blob.bin is a binary file of 7 bytes; not shown]"


def test_list_dir(tree: Path) -> None:
    # Links are marked, never followed: their targets may be outside the root.
    assert Root(tree).list_dir(".").splitlines() == [
        ".: 7 entries",
        "dir_out@",
        "inside.txt (7 bytes)",
        "link_in@",
        "link_out@",
        "loop@",
        "rel_out@",
        "sub/",
    ]
    assert Root(tree).list_dir("sub").splitlines() == [
        "sub: 3 entries",
        "deep.txt (5 bytes)",
        "escape@",
        "up@",
    ]
    assert Root(tree).list_dir("sub/up").splitlines()[0] == ".: 7 entries"


def test_list_dir_cap_and_errors(tree: Path) -> None:
    many = tree / "many"
    many.mkdir()
    for i in range(12):
        (many / f"f{i:02d}").touch()
    listing = Root(tree).list_dir("many", cap=10).splitlines()
    assert listing[0] == "many: 12 entries" and len(listing) == 12
    assert listing[-1] == "[truncated: showing 10 of 12 entries]"
    with pytest.raises(ToolError, match="not a directory: use read_file"):
        Root(tree).list_dir("inside.txt")


def test_root_must_be_a_directory(tree: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        Root(tree / "inside.txt")
    with pytest.raises(ValueError, match="No such file"):
        Root(tree / "nope")
