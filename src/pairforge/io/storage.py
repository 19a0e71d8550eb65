"""Where a run's files live: a local directory or an S3 prefix, with atomic visibility.

The commit protocol (docs/architecture.md, step "Commit") needs one primitive from a store: make a complete object visible at
once. Locally that is write-to-temp + ``os.replace`` in the same directory; on S3 it is a single
``PutObject`` or a completed multipart upload (S3 never shows a partial object).
"""
from __future__ import annotations

import abc
import errno
import os
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO, Iterable, NamedTuple

from pairforge.errors import UserError

TMP_MARK = ".tmp-"
#: errno values that mean "the store is full": the run stops with one line, committed shards are kept
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class StorageError(UserError, ValueError):
    """The output location cannot be used as given (bad url, no bucket, not writable, full)."""


def full_error(e: OSError, where: str) -> StorageError | None:
    """The one-line error for a write that failed because the store is full (None for other errors)."""
    if e.errno in FULL_ERRNOS:
        return StorageError(f"{where}: {e.strerror or 'no space left'}; free space and rerun the same command "
                            "to resume (committed shards are kept)")
    return None


class ObjectStat(NamedTuple):
    """Size in bytes and modification time (seconds since the epoch; None where the store has none)."""

    size: int
    mtime: float | None


class Storage(abc.ABC):
    """A flat namespace of named objects under a root (names use '/' separators)."""

    url: str

    @abc.abstractmethod
    def read_bytes(self, name: str) -> bytes: ...

    @abc.abstractmethod
    def write_bytes(self, name: str, data: bytes) -> None:
        """Write so that readers see either the old object or the complete new one."""

    @abc.abstractmethod
    def open_staging(self, name: str) -> BinaryIO:
        """A writable, seekable binary file to build ``name`` in; :meth:`commit_staging` makes it visible
        atomically, :meth:`discard_staging` drops it. Nothing is left behind by a process killed in
        between except where the next run's cleanup finds it (see the subclasses)."""

    @abc.abstractmethod
    def commit_staging(self, name: str, f: BinaryIO) -> None:
        """Make what was written to ``f`` (from :meth:`open_staging`) visible as ``name``; closes ``f``."""

    def discard_staging(self, f: BinaryIO) -> None:
        """Close ``f`` without making it visible, removing its data."""
        try:
            f.close()  # flushes: on a full disk this fails again
        except OSError:
            pass

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Names (relative to the root) that start with ``prefix``, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None: ...

    @abc.abstractmethod
    def size(self, name: str) -> int: ...

    def stats(self, prefix: str = "") -> dict[str, ObjectStat]:
        """Size and mtime of every object whose name starts with ``prefix`` (one listing, not one call each)."""
        return {n: ObjectStat(self.size(n), None) for n in self.list(prefix)}

    def open_read(self, name: str):
        """A readable binary file object (default: in memory)."""
        import io

        return io.BytesIO(self.read_bytes(name))

    def uri(self, name: str) -> str:
        return self.url.rstrip("/") + "/" + name

    def delete_many(self, names: Iterable[str]) -> None:
        for n in names:
            self.delete(n)


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _path(self, name: str) -> Path:
        p = (self.root / name).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"object name {name!r} escapes the storage root {self.root}")
        return p

    def read_bytes(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}{TMP_MARK}{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            full = full_error(e, f"writing {path}")
            if full is None:
                raise
            tmp.unlink(missing_ok=True)
            raise full from None

    def open_staging(self, name: str) -> BinaryIO:
        """A temp file next to ``name`` (``NAME.tmp-<uuid>``: commit is a rename, not a copy). One left by
        a killed process stays in the run directory until the run's cleanup removes it."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path.with_name(f"{path.name}{TMP_MARK}{uuid.uuid4().hex}"), "w+b")  # noqa: SIM115

    def commit_staging(self, name: str, f: BinaryIO) -> None:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(f.name, self._path(name))

    def discard_staging(self, f: BinaryIO) -> None:
        try:
            f.close()  # flushes: on a full disk this fails again, and the file must still go
        except OSError:
            pass
        try:
            os.unlink(f.name)
        except FileNotFoundError:
            pass

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def list(self, prefix: str = "") -> list[str]:
        # walk only the folder the prefix names (a run's hq/ folder can hold millions of files)
        top = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not top.is_dir() or (top != self.root and self.root not in top.resolve().parents):
            return []
        out = []
        for dirpath, _dirs, files in os.walk(top):
            for fn in files:
                rel = os.path.relpath(os.path.join(dirpath, fn), self.root).replace(os.sep, "/")
                if rel.startswith(prefix):
                    out.append(rel)
        return sorted(out)

    def stats(self, prefix: str = "") -> dict[str, ObjectStat]:
        out = {}
        for name in self.list(prefix):
            try:
                st = os.stat(self.root / name)
            except FileNotFoundError:  # removed between the listing and the stat
                continue
            out[name] = ObjectStat(st.st_size, st.st_mtime)
        return out

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            pass

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def open_read(self, name: str):
        return open(self._path(name), "rb")

    def uri(self, name: str) -> str:
        return str(self._path(name))


class S3Storage(Storage):
    """S3 (or any S3-compatible server). Credentials and endpoint come from the environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``),
    as boto3 reads them; they are never written anywhere by pairforge."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// url: {url!r}")
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StorageError(f"{url!r} names no bucket: use s3://BUCKET/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self._endpoint,
                config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
            )
        return self._client

    def __getstate__(self):  # boto3 clients do not pickle; workers make their own
        d = dict(self.__dict__)
        d["_client"] = None
        return d

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def read_bytes(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()

    def write_bytes(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def open_staging(self, name: str) -> BinaryIO:
        """An anonymous local temp file (unlinked from the start), so the kernel frees it when the
        process ends, kill -9 included: nothing is left in ``$TMPDIR`` for anyone to clean."""
        return tempfile.TemporaryFile(prefix="pairforge-")  # noqa: SIM115

    def commit_staging(self, name: str, f: BinaryIO) -> None:
        # upload_fileobj uses multipart above its threshold; the object appears only on completion
        try:
            f.flush()
            f.seek(0)
            self.client.upload_fileobj(f, self.bucket, self._key(name))
        finally:
            f.close()

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        out = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                out.append(obj["Key"][strip:])
        return sorted(out)

    def stats(self, prefix: str = "") -> dict[str, ObjectStat]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                out[obj["Key"][strip:]] = ObjectStat(int(obj["Size"]), obj["LastModified"].timestamp())
        return dict(sorted(out.items()))

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def size(self, name: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=self._key(name))["ContentLength"])


def open_storage(url: str | os.PathLike, endpoint_url: str | None = None) -> Storage:
    """A Storage for a local path or an ``s3://bucket/prefix`` url."""
    s = str(url)
    if s.startswith("s3://"):
        return S3Storage(s, endpoint_url=endpoint_url)
    if "://" in s and not s.startswith("file://"):
        raise StorageError(f"unsupported output location {s!r}: use a local path or s3://bucket/prefix")
    if s.startswith("file://"):
        s = s[len("file://"):]
    return LocalStorage(s)
