"""In-memory host parts for the tests and the bench (nothing survives the
process), with fault injection, and a platform whose clock can be moved."""

from __future__ import annotations

import os
import threading
from typing import Dict, Optional

from offpay import HostCounter, HostError, HostPlatform, HostStorage, SystemPlatform


class MemoryStorage(HostStorage):
    """Blobs in a dict. ``fail_replace_at = n`` makes replace number n
    (0-based, counted from when it is set) raise ``HostError.Io`` without
    applying it, like a full disk."""

    def __init__(self) -> None:
        self.blobs: Dict[str, bytes] = {}
        self.replaces = 0
        self.fail_replace_at: Optional[int] = None
        self._lock = threading.Lock()

    def read(self, name: str) -> Optional[bytes]:
        with self._lock:
            return self.blobs.get(name)

    def replace(self, name: str, data: bytes) -> None:
        with self._lock:
            n = self.replaces
            self.replaces += 1
            if self.fail_replace_at is not None and n >= self.fail_replace_at:
                raise HostError.Io(f"injected: replace {name} (write {n}) failed")
            self.blobs[name] = bytes(data)


class MemoryCounter(HostCounter):
    """A counter in memory; ``fail = True`` makes advance_to raise."""

    def __init__(self) -> None:
        self.value = 0
        self.fail = False
        self._lock = threading.Lock()

    def read(self) -> int:
        with self._lock:
            return self.value

    def advance_to(self, value: int) -> None:
        with self._lock:
            if self.fail:
                raise HostError.Unavailable("injected: counter unavailable")
            if value < self.value:
                raise HostError.Io(f"counter would go backwards ({value} < {self.value})")
            self.value = value


class MemoryPlatform(HostPlatform):
    """A fixed random device secret, the system clock plus ``skew`` seconds."""

    def __init__(self) -> None:
        self.secret = os.urandom(32)
        self.skew = 0
        self._system = SystemPlatform(os.devnull)

    def device_secret(self) -> bytes:
        return self.secret

    def now_unix_seconds(self) -> int:
        return self._system.now_unix_seconds() + self.skew

    def random_bytes(self, length: int) -> bytes:
        return self._system.random_bytes(length)


class SkewedPlatform(SystemPlatform):
    """The file-backed platform with a clock that can be moved."""

    def __init__(self, secret_path: str) -> None:
        super().__init__(secret_path)
        self.skew = 0

    def now_unix_seconds(self) -> int:
        return super().now_unix_seconds() + self.skew
