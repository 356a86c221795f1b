"""Host implementations of the SDK's three callback interfaces for a desktop
or server Python host: the app's files directory (:class:`FileStorage`), a
counter in its own file (:class:`FileCounter`) and the operating system's
clock, random source and a device-secret file (:class:`SystemPlatform`).

A phone app implements the same interfaces over its platform: the counter in
hardware (KeyMint/StrongBox, the Secure Enclave or the Keychain) and the
device secret in its keystore. A file counter only stops a rollback of the
storage directory if it lives where that rollback does not reach (another
directory, another volume); the files here are the honest desktop stand-in,
and the wallet still detects a rolled-back state blob against it.

Every method refuses bad input with a :class:`HostError` (never another
exception type) and leaves the files intact: a ``replace`` writes
``NAME.tmp``, fsyncs it, renames it over ``NAME`` and fsyncs the directory,
so after a crash the old or the new content is there, never a mix.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
from typing import Optional

from ._ffi.offpay import HostCounter, HostError, HostPlatform, HostStorage

__all__ = ["FileStorage", "FileCounter", "SystemPlatform", "atomic_write"]

# Blob names the wallet uses are short ASCII words (state.sealed, pin-attempts,
# device-check); anything else (a path separator, "..", a hidden file) is refused.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The sealed state is bounded by the wallet (STATE_BYTES_MAX); a blob larger
# than this is not the wallet's and is refused without being read whole.
BLOB_BYTES_MAX = 16 * 1024 * 1024

_COUNTER_MAGIC = b"OFPC"
_COUNTER_LEN = 12
_DEVICE_SECRET_LEN = 32
_RANDOM_BYTES_MAX = 1 << 20


def _refused(text: str) -> HostError:
    # Positional: the generated variant's one field (its name is the FFI's).
    return HostError.Io(text)


def _unavailable(text: str) -> HostError:
    return HostError.Unavailable(text)


def _io(what: str, err: BaseException) -> HostError:
    return _refused(f"{what}: {err}")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".tmp"):
        raise _refused(f"refused blob name {name!r}")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(directory: str, name: str, data: bytes) -> None:
    """Durably and atomically replace ``directory/name`` by ``data``
    (write ``name.tmp``, fsync, rename, fsync the directory).

    Raises :class:`HostError.Io` on any OS error; the old content stays.
    """
    final = os.path.join(directory, name)
    tmp = final + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(directory)
    except OSError as e:
        raise _io(f"replace {name}", e) from e


def _read_bounded(path: str, limit: int) -> Optional[bytes]:
    """The file's bytes (at most ``limit + 1``), or None if it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        return None


class FileStorage(HostStorage):
    """The wallet's blobs as files in one directory (created if missing)."""

    def __init__(self, directory: str) -> None:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as e:
            raise _io(f"create {directory}", e) from e
        self.directory = directory
        self._lock = threading.Lock()

    def read(self, name: str) -> Optional[bytes]:
        _check_name(name)
        try:
            data = _read_bounded(os.path.join(self.directory, name), BLOB_BYTES_MAX)
        except OSError as e:
            raise _io(f"read {name}", e) from e
        if data is not None and len(data) > BLOB_BYTES_MAX:
            raise _refused(f"blob {name} is larger than {BLOB_BYTES_MAX} bytes")
        return data

    def replace(self, name: str, data: bytes) -> None:
        _check_name(name)
        if len(data) > BLOB_BYTES_MAX:
            raise _refused(f"blob {name} of {len(data)} bytes refused")
        with self._lock:
            atomic_write(self.directory, name, bytes(data))


class FileCounter(HostCounter):
    """A monotonic counter in one file, in the Rust ``FileCounter`` format
    (``b"OFPC"`` then the value as u64 little-endian): absent means 0 (a
    fresh counter, what ``OffpayWallet.create`` needs). It refuses to go
    backwards, and remembers the highest value it saw, so a file rewound
    under a running process is reported instead of believed."""

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as e:
            raise _io(f"create {directory}", e) from e
        self.path = os.path.abspath(path)
        self._floor = 0
        self._lock = threading.Lock()

    def _load(self) -> int:
        try:
            data = _read_bounded(self.path, _COUNTER_LEN)
        except OSError as e:
            raise _io("read counter", e) from e
        if data is None:
            value = 0
        elif len(data) != _COUNTER_LEN or data[:4] != _COUNTER_MAGIC:
            raise _refused(f"counter file {self.path} is malformed")
        else:
            (value,) = struct.unpack("<Q", data[4:])
        if value < self._floor:
            raise _refused(f"counter file {self.path} went backwards ({value} < {self._floor})")
        self._floor = value
        return value

    def read(self) -> int:
        with self._lock:
            return self._load()

    def advance_to(self, value: int) -> None:
        with self._lock:
            current = self._load()
            if value < current:
                raise _refused(f"counter would go backwards ({value} < {current})")
            if value == current:
                return
            atomic_write(
                os.path.dirname(self.path),
                os.path.basename(self.path),
                _COUNTER_MAGIC + struct.pack("<Q", value),
            )
            self._floor = value


class SystemPlatform(HostPlatform):
    """The device secret from a file (32 random bytes, created with mode 0600
    on first use: a phone keeps it in its keystore), the system clock and
    ``os.urandom``."""

    def __init__(self, secret_path: str) -> None:
        self.secret_path = os.path.abspath(secret_path)
        self._lock = threading.Lock()

    def device_secret(self) -> bytes:
        with self._lock:
            try:
                data = _read_bounded(self.secret_path, _DEVICE_SECRET_LEN)
                if data is None:
                    directory = os.path.dirname(self.secret_path)
                    os.makedirs(directory, mode=0o700, exist_ok=True)
                    atomic_write(directory, os.path.basename(self.secret_path),
                                 os.urandom(_DEVICE_SECRET_LEN))
                    data = _read_bounded(self.secret_path, _DEVICE_SECRET_LEN)
            except OSError as e:
                raise _io("device secret", e) from e
            if data is None or len(data) != _DEVICE_SECRET_LEN:
                raise _unavailable(f"device secret {self.secret_path} is not {_DEVICE_SECRET_LEN} bytes")
            return data

    def now_unix_seconds(self) -> int:
        return int(time.time())

    def random_bytes(self, length: int) -> bytes:
        if not 0 <= length <= _RANDOM_BYTES_MAX:
            raise _refused(f"refused random_bytes({length})")
        try:
            return os.urandom(length)
        except OSError as e:
            raise _unavailable(f"os.urandom: {e}") from e
