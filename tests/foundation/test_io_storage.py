import time

import pytest

from pairforge.io.storage import LocalStorage, S3Storage, open_storage


def _exercise(st):
    st.write_bytes("a/b.json", b"{}")
    assert st.read_bytes("a/b.json") == b"{}"
    assert st.exists("a/b.json") and not st.exists("a/c.json")
    f = st.open_staging("a/big.tar")
    f.write(b"x" * 1000)
    assert not st.exists("a/big.tar")  # invisible until committed
    st.commit_staging("a/big.tar", f)
    assert f.closed
    dropped = st.open_staging("a/dropped.tar")
    dropped.write(b"y")
    st.discard_staging(dropped)
    assert st.size("a/big.tar") == 1000
    assert st.list("a/") == ["a/b.json", "a/big.tar"]
    stats = st.stats("a/")
    assert list(stats) == ["a/b.json", "a/big.tar"] and stats["a/big.tar"].size == 1000
    assert stats["a/big.tar"].mtime is not None and abs(stats["a/big.tar"].mtime - time.time()) < 3600
    assert st.stats("nothing/") == {} and st.list("a/b.") == ["a/b.json"]
    st.delete("a/b.json")
    assert st.list("a/") == ["a/big.tar"]


def test_local_storage_roundtrip_and_atomic_names(tmp_path):
    st = LocalStorage(tmp_path / "run")
    _exercise(st)
    # no temp files remain visible after atomic writes
    assert not [p for p in (tmp_path / "run").rglob("*") if ".tmp-" in p.name]


def test_local_storage_refuses_escaping_names(tmp_path):
    with pytest.raises(ValueError, match="escapes"):
        LocalStorage(tmp_path).write_bytes("../evil", b"")


def test_s3_storage_against_moto_server(s3_bucket):
    st = open_storage(f"s3://{s3_bucket}/runs/one")
    assert isinstance(st, S3Storage)
    _exercise(st)


def test_unsupported_scheme_is_clear():
    with pytest.raises(ValueError, match="unsupported output location"):
        open_storage("gs://bucket/x")
