"""One writer per run directory: a lock object next to ``run.json``.

Two ``pairforge run`` into one ``--out`` would delete each other's in-flight files (a run's cleanup
removes data no record owns) and interleave records, so the driver takes this lock before it writes
anything and holds it until the run ends.

- Local directory: ``run.lock`` created with ``O_CREAT | O_EXCL`` (atomic on every local filesystem),
  holding the owner's host, pid, process start time and when it was taken. A lock whose owner is on
  this host and no longer alive (kill -9, power loss) is stale and taken over; a lock held from another
  host cannot be checked from here, and the message says how to remove it.
- S3: ``run.lock`` written with a conditional put (``If-None-Match: *``: the store refuses it if the
  object exists), renewed by a heartbeat thread with ``If-Match: <etag>`` (so a renewal never
  overwrites a lock someone else took). A lock not renewed for ``lease_s`` by the store's own clock
  (its ``Date`` header minus the object's ``LastModified``: no client clocks involved) is stale and
  taken over with ``If-Match`` on the stale object's etag, so of two takers only one wins.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from pairforge.errors import UserError
from pairforge.io.storage import LocalStorage, S3Storage, Storage, StorageError

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"
#: seconds an S3 lock stays valid without a heartbeat (renewed every third of it)
DEFAULT_LEASE_S = 60.0


class RunLocked(UserError):
    """Another writer holds the run directory."""


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a live pid from a reused one)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    now_start = _proc_start(pid)
    return start is None or now_start is None or now_start == start


def _owner() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "proc_start": _proc_start(pid), "taken": time.time(),
            "token": uuid.uuid4().hex}


def _describe(owner: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(owner.get("taken", 0)))
    return f"pid {owner.get('pid')} on host {owner.get('host')} since {when}"


class RunLock:
    """A held lock; :meth:`release` (or leaving the ``with`` block) gives it back."""

    def __init__(self, storage: Storage, owner: dict):
        self.storage = storage
        self.owner = owner
        self.lost: str | None = None

    def check(self) -> None:
        """Raise if the lock was lost (an S3 lease taken over while this run was frozen)."""
        if self.lost:
            raise RunLocked(self.lost)

    def release(self) -> None: ...

    def __enter__(self) -> RunLock:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class LocalRunLock(RunLock):
    def __init__(self, storage: LocalStorage):
        super().__init__(storage, _owner())
        self.path = storage.root / LOCK_NAME
        self._acquire()

    def _acquire(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is not None and not self._stale(holder):
                    raise RunLocked(
                        f"{self.storage.url} is in use by another pairforge run ({_describe(holder)}); wait for it to "
                        f"finish, or delete {self.path} if that run is gone"
                    ) from None
                self._take_over(holder)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self.owner, f)
                f.flush()
                os.fsync(f.fileno())
            return
        raise RunLocked(f"{self.storage.url}: could not take {self.path} (another run keeps taking it)")

    def _read(self) -> dict | None:
        """The holder, or None when the file vanished or is unreadable (a crash while writing it)."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"gone": True}
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return data
        try:  # a lock file just created by a run that has not written it yet is held, not broken
            if time.time() - self.path.stat().st_mtime < 10:
                return {"host": "(being taken)", "pid": "?", "taken": time.time()}
        except FileNotFoundError:
            return {"gone": True}
        return None

    def _stale(self, holder: dict) -> bool:
        if holder.get("gone"):
            return True
        if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
            return False  # another machine's process: cannot tell from here
        return not _pid_alive(holder["pid"], holder.get("proc_start"))

    def _take_over(self, holder: dict | None) -> None:
        """Move the stale lock aside (a rename: of two takers only one moves it), check that what moved is
        the lock judged stale, and put it back if a live owner had replaced it in between."""
        if holder is not None and holder.get("gone"):
            return
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_bytes())
        except (OSError, ValueError):
            moved = None
        if holder is not None and moved != holder:
            try:
                os.link(aside, self.path)  # fails if a third run holds it now: then that one wins
            except FileExistsError:
                pass
        else:
            log.warning("%s: took over a stale run lock (%s is no longer running)", self.storage.url,
                        _describe(holder or {}))
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        holder = self._read()
        if holder and holder.get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)


class S3RunLock(RunLock):
    def __init__(self, storage: S3Storage, lease_s: float = DEFAULT_LEASE_S, heartbeat: bool = True):
        owner = _owner()
        owner["lease_s"] = lease_s
        super().__init__(storage, owner)
        self.s3: S3Storage = storage
        self.key = storage._key(LOCK_NAME)
        self.etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._acquire()
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name="pairforge-run-lock", daemon=True)
            self._thread.start()

    def _body(self) -> bytes:
        return json.dumps({**self.owner, "renewed": time.time()}).encode()

    def _put(self, **cond) -> str:
        r = self.s3.client.put_object(Bucket=self.s3.bucket, Key=self.key, Body=self._body(), **cond)
        return r["ETag"]

    def _acquire(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.etag = self._put(IfNoneMatch="*")
            return
        except ClientError as e:
            if _code(e) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise
        head = self.s3.client.head_object(Bucket=self.s3.bucket, Key=self.key)
        holder = {}
        try:
            holder = json.loads(self.s3.client.get_object(Bucket=self.s3.bucket, Key=self.key)["Body"].read())
        except (ClientError, ValueError):
            pass
        lease = float(holder.get("lease_s", DEFAULT_LEASE_S)) if isinstance(holder, dict) else DEFAULT_LEASE_S
        age = _server_now(head) - head["LastModified"].timestamp()
        if age < lease:
            raise RunLocked(
                f"{self.s3.url} is in use by another pairforge run ({_describe(holder if isinstance(holder, dict) else {})}, "
                f"lock renewed {age:.0f} s ago, lease {lease:.0f} s); wait for it to finish, or for the lease to expire"
            )
        try:
            self.etag = self._put(IfMatch=head["ETag"])
        except ClientError as e:
            if _code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404"):
                raise RunLocked(f"{self.s3.url}: another pairforge run took the expired run lock first") from None
            raise
        log.warning("%s: took over an expired run lock (not renewed for %.0f s)", self.s3.url, age)

    def renew(self) -> bool:
        """Extend the lease; False (and :attr:`lost` set) when someone else holds the lock now."""
        from botocore.exceptions import ClientError

        try:
            self.etag = self._put(IfMatch=self.etag)
            return True
        except ClientError as e:
            if _code(e) in ("PreconditionFailed", "412", "NoSuchKey", "404", "ConditionalRequestConflict", "409"):
                self.lost = (f"{self.s3.url}: this run lost its run lock (not renewed within "
                             f"{self.owner['lease_s']:.0f} s, another run took it); stop and rerun when that one is done")
                log.error("%s", self.lost)
                return False
            log.warning("%s: could not renew the run lock (%s); retrying", self.s3.url, e)
            return True

    def _beat(self) -> None:
        period = max(0.05, float(self.owner["lease_s"]) / 3)
        while not self._stop.wait(period):
            if not self.renew():
                return

    def release(self) -> None:
        from botocore.exceptions import ClientError

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost or self.etag is None:
            return
        try:
            self.s3.client.delete_object(Bucket=self.s3.bucket, Key=self.key, IfMatch=self.etag)
        except ClientError as e:
            log.warning("%s: could not release the run lock (%s)", self.s3.url, e)
        self.etag = None


def _code(e) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _server_now(response: dict) -> float:
    """The store's clock, from the HTTP ``Date`` header of a response (the client's clock as fallback)."""
    from email.utils import parsedate_to_datetime

    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date).timestamp() if date else time.time()
    except (TypeError, ValueError):
        return time.time()


def acquire_run_lock(storage: Storage, lease_s: float = DEFAULT_LEASE_S) -> RunLock:
    """Take the run directory's lock or raise :class:`RunLocked` naming who holds it. This is the run's
    first write, so an output location that cannot be written (a file, a read-only folder, a bucket
    that does not exist, an unreachable endpoint) fails here with a :class:`StorageError` naming it."""
    if isinstance(storage, S3Storage):
        return _s3_lock(storage, lease_s)
    if isinstance(storage, LocalStorage):
        root = storage.root
        if root.exists() and not root.is_dir():
            raise StorageError(f"--out {root} is a file, not a folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
            return LocalRunLock(storage)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f"--out {root}: a parent of it is a file, not a folder") from None
        except OSError as e:
            raise StorageError(f"--out {root}: cannot write there ({e.strerror or e})") from None
    raise TypeError(f"no run lock for {type(storage).__name__}")


def _s3_lock(storage: S3Storage, lease_s: float) -> S3RunLock:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = f"--out {storage.url}" + (f" (endpoint {storage._endpoint})" if storage._endpoint else "")
    try:
        return S3RunLock(storage, lease_s=lease_s)
    except ClientError as e:
        code = _code(e)
        if code == "NoSuchBucket":
            raise StorageError(f"{where}: bucket {storage.bucket!r} does not exist; create it first") from None
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise StorageError(f"{where}: access denied ({code}); check the credentials in the environment") from None
        raise StorageError(f"{where}: {code}: {e.response.get('Error', {}).get('Message', e)}") from None
    except NoCredentialsError:
        raise StorageError(f"{where}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)") from None
    except BotoCoreError as e:  # unreachable endpoint, bad url, timeouts after retries
        raise StorageError(f"{where}: {e}") from None
