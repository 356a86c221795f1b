"""offpay: offline payments from Python.

The wallet (its trusted application and sealed vault) is the Rust core,
reached through UniFFI bindings generated at build time (``offpay._ffi``);
this package re-exports them (``OffpayWallet``, ``SyncClient``,
``OffpayError`` and its variants, the records) and adds host
implementations of the storage, counter and platform interfaces for a
desktop or server host (:mod:`offpay.host`).
"""

from ._ffi import offpay as _bindings
from ._ffi.offpay import *  # noqa: F401,F403  (the generated API)
from .host import FileCounter, FileStorage, SystemPlatform, atomic_write

__all__ = [
    *_bindings.__all__,
    "FileStorage",
    "FileCounter",
    "SystemPlatform",
    "atomic_write",
]
