"""Planning a large files source (issue 12.14): a list file is resolved with one lstat per entry and one
realpath per folder, with the same result as resolving every entry in full."""
import os

import pytest

from pairforge.sources import files as files_mod
from pairforge.sources.config import FilesSourceConfig
from pairforge.sources.files import discover_files


@pytest.fixture()
def tree(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    for i in range(3):
        (real / f"p{i}.png").write_bytes(b"x")
    (tmp_path / "via").symlink_to(real, target_is_directory=True)  # a symlinked folder
    (real / "link.png").symlink_to(real / "p0.png")  # a symlinked file
    (real / "dangling.png").symlink_to(real / "gone.png")
    (real / "loop.png").symlink_to(real / "loop.png")
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join([
        "# a comment", "",
        str(tmp_path / "via" / "p1.png"),   # through the symlinked folder
        "real/p2.png",                       # relative to the list file
        str(real / "link.png"),             # resolves to p0
        str(real / "dangling.png"),         # kept as the link itself
        str(real / "loop.png"),
        str(real / "missing.png"),          # listed, rejected when read
        str(real / "sub" / ".." / "p0.png"),
        "s3://bucket/key.png",
    ]) + "\n")
    return tmp_path, real, lst


def test_list_file_entries_resolve_like_realpath(tree):
    tmp_path, real, lst = tree
    files, stats = discover_files(FilesSourceConfig(paths=[str(lst)]))
    real_s = os.path.realpath(real)
    assert files == sorted({
        os.path.join(real_s, "p1.png"), os.path.join(real_s, "p2.png"), os.path.join(real_s, "p0.png"),
        str(real / "dangling.png"), str(real / "loop.png"), os.path.join(real_s, "missing.png"), "s3://bucket/key.png",
    })
    assert stats["files"] == 7


def test_a_long_list_resolves_each_folder_once(tmp_path, monkeypatch):
    folders = [tmp_path / f"d{k}" for k in range(3)]
    for d in folders:
        d.mkdir()
    n = 3000
    (tmp_path / "list.txt").write_text("".join(f"{folders[i % 3]}/img-{i:06d}.png\n" for i in range(n)))
    calls = {"realpath": 0}
    real_realpath = os.path.realpath

    def counting(p, *a, **k):
        calls["realpath"] += 1
        return real_realpath(p, *a, **k)

    monkeypatch.setattr(files_mod.os.path, "realpath", counting)
    files, _ = discover_files(FilesSourceConfig(paths=[str(tmp_path / "list.txt")]))
    assert len(files) == n
    assert calls["realpath"] <= 3  # one per folder, not one per entry (that was 3000)
