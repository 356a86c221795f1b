"""The package's file-backed host parts, on their own."""

from __future__ import annotations

import os
import struct

import pytest

from offpay import FileCounter, FileStorage, HostError, SystemPlatform


def test_storage_replace_is_atomic_and_reads_back(tmp_path):
    s = FileStorage(str(tmp_path / "files"))
    assert s.read("state.sealed") is None
    s.replace("state.sealed", b"one")
    s.replace("state.sealed", b"two")
    assert s.read("state.sealed") == b"two"
    assert sorted(os.listdir(tmp_path / "files")) == ["state.sealed"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x.tmp", "a" * 65, "\x00"])
def test_storage_refuses_bad_names(tmp_path, name):
    s = FileStorage(str(tmp_path))
    with pytest.raises(HostError.Io):
        s.replace(name, b"x")
    with pytest.raises(HostError.Io):
        s.read(name)
    assert os.listdir(tmp_path) == []


def test_counter_is_monotonic_and_in_the_rust_format(tmp_path):
    p = str(tmp_path / "c" / "wallet.ctr")
    c = FileCounter(p)
    assert c.read() == 0
    c.advance_to(3)
    c.advance_to(3)
    assert c.read() == 3
    with open(p, "rb") as f:
        assert f.read() == b"OFPC" + struct.pack("<Q", 3)
    with pytest.raises(HostError.Io):
        c.advance_to(2)
    assert FileCounter(p).read() == 3


def test_counter_refuses_a_rewound_or_malformed_file(tmp_path):
    p = str(tmp_path / "wallet.ctr")
    c = FileCounter(p)
    c.advance_to(5)
    with open(p, "wb") as f:
        f.write(b"OFPC" + struct.pack("<Q", 4))
    with pytest.raises(HostError.Io):
        c.read()
    with open(p, "wb") as f:
        f.write(b"junk")
    with pytest.raises(HostError.Io):
        FileCounter(p).read()


def test_platform_keeps_one_device_secret(tmp_path):
    p = SystemPlatform(str(tmp_path / "ks" / "device.secret"))
    s = p.device_secret()
    assert len(s) == 32 and p.device_secret() == s
    assert SystemPlatform(str(tmp_path / "ks" / "device.secret")).device_secret() == s
    assert os.stat(tmp_path / "ks" / "device.secret").st_mode & 0o077 == 0
    assert len(p.random_bytes(16)) == 16 and p.random_bytes(16) != p.random_bytes(16)
    with pytest.raises(HostError.Io):
        p.random_bytes(-1)
    with open(tmp_path / "ks" / "device.secret", "wb") as f:
        f.write(b"short")
    with pytest.raises(HostError.Unavailable):
        p.device_secret()
