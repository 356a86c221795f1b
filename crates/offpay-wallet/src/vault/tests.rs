//! Unit tests of the sealed file vault.

use std::fs;
use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;

use super::*;

const PIN: &[u8] = b"123456";
const SECRET: [u8; 32] = [7u8; 32];

fn create(dir: &Path) -> SealedFileVault {
    SealedFileVault::create(dir, PIN, &SECRET, KdfParams::TEST).unwrap()
}

fn open(dir: &Path) -> Result<SealedFileVault, VaultError> {
    SealedFileVault::open(dir, PIN, &SECRET)
}

fn state_path(dir: &Path) -> std::path::PathBuf {
    dir.join("state.sealed")
}

#[test]
fn vault_sealed_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = create(dir.path());
    let l = v.load().unwrap();
    assert_eq!((l.state, l.version, l.rollback), (None, 0, None));
    v.commit(b"first").unwrap();
    v.commit(b"second state").unwrap();
    let l = v.load().unwrap();
    assert_eq!(l.state.as_deref(), Some(&b"second state"[..]));
    assert_eq!((l.version, l.rollback), (2, None));
    drop(v);

    let mut v = open(dir.path()).unwrap();
    let l = v.load().unwrap();
    assert_eq!(l.state.as_deref(), Some(&b"second state"[..]));
    assert_eq!(l.version, 2);
    // Commit without load works too (re-reads first).
    let mut v2 = open(dir.path()).unwrap();
    v2.commit(b"").unwrap();
    let l = v.load().unwrap();
    assert_eq!((l.state, l.version), (Some(vec![]), 3));
    assert_eq!(
        FileCounter::open(&dir.path().join("counter"))
            .unwrap()
            .read(),
        Ok(3)
    );
    // The plaintext does not appear in the file.
    let file = fs::read(state_path(dir.path())).unwrap();
    assert!(!file.windows(6).any(|w| w == b"second"));
}

#[test]
fn vault_sealed_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = create(dir.path());
    assert_eq!(
        v.commit(&vec![0; STATE_BYTES_MAX + 1]),
        Err(VaultError::TooLarge)
    );
    let big = vec![0xA5; STATE_BYTES_MAX];
    v.commit(&big).unwrap();
    let mut v = open(dir.path()).unwrap();
    assert_eq!(v.load().unwrap().state, Some(big));
    // An attacker-grown file is refused without being read whole.
    let mut file = fs::read(state_path(dir.path())).unwrap();
    file.push(0);
    fs::write(state_path(dir.path()), &file).unwrap();
    assert_eq!(v.load(), Err(VaultError::Tampered));
    assert_eq!(open(dir.path()).err(), Some(VaultError::Tampered));
}

#[test]
fn vault_create_and_open_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(open(dir.path()).err(), Some(VaultError::NotFound));
    let bad = KdfParams {
        m_kib: 4,
        t: 1,
        p: 1,
    };
    assert_eq!(
        SealedFileVault::create(dir.path(), PIN, &SECRET, bad).err(),
        Some(VaultError::InvalidKdfParams)
    );
    let _v = create(dir.path());
    assert_eq!(
        SealedFileVault::create(dir.path(), PIN, &SECRET, KdfParams::TEST).err(),
        Some(VaultError::AlreadyExists)
    );
    assert!(KdfParams::INTERACTIVE.validate().is_ok());
    for p in [
        KdfParams {
            m_kib: 64,
            t: 0,
            p: 1,
        },
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 0,
        },
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 9,
        },
        KdfParams {
            m_kib: KdfParams::M_KIB_MAX + 1,
            t: 1,
            p: 1,
        },
        KdfParams {
            m_kib: 64,
            t: KdfParams::T_MAX + 1,
            p: 1,
        },
    ] {
        assert_eq!(p.validate(), Err(VaultError::InvalidKdfParams), "{p:?}");
    }
}

#[test]
fn vault_pin_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut v = create(d);
    v.commit(b"money").unwrap();
    drop(v);
    let wrong = |d: &Path| SealedFileVault::open(d, b"000000", &SECRET).err();

    // A right PIN resets the count.
    assert_eq!(wrong(d), Some(VaultError::WrongPin { attempts_left: 4 }));
    assert_eq!(wrong(d), Some(VaultError::WrongPin { attempts_left: 3 }));
    open(d).unwrap();
    assert_eq!(wrong(d), Some(VaultError::WrongPin { attempts_left: 4 }));
    open(d).unwrap();

    for left in (0..PIN_ATTEMPTS_MAX).rev() {
        assert_eq!(
            wrong(d),
            Some(VaultError::WrongPin {
                attempts_left: left
            })
        );
    }
    // Exhausted, even with the right PIN.
    assert_eq!(open(d).err(), Some(VaultError::PinAttemptsExhausted));
    assert_eq!(wrong(d), Some(VaultError::PinAttemptsExhausted));
    assert_eq!(open(d).err(), Some(VaultError::PinAttemptsExhausted));

    SealedFileVault::reset_pin_attempts(d).unwrap();
    let mut v = open(d).unwrap();
    assert_eq!(v.load().unwrap().state.as_deref(), Some(&b"money"[..]));
    assert_eq!(wrong(d), Some(VaultError::WrongPin { attempts_left: 4 }));

    // Missing or malformed attempts file: fail closed, and say so (not
    // "too many wrong PINs").
    fs::remove_file(d.join("pin-attempts")).unwrap();
    assert_eq!(open(d).err(), Some(VaultError::PinAttemptsUnreadable));
    fs::write(d.join("pin-attempts"), b"\0\0").unwrap();
    assert_eq!(open(d).err(), Some(VaultError::PinAttemptsUnreadable));
    SealedFileVault::reset_pin_attempts(d).unwrap();
    open(d).unwrap();
}

#[test]
fn vault_other_device_secret_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = create(dir.path());
    v.commit(b"x").unwrap();
    let mut other = SECRET;
    other[31] ^= 1;
    // Told apart from a wrong PIN, and no attempt is counted for it.
    for _ in 0..PIN_ATTEMPTS_MAX + 1 {
        assert_eq!(
            SealedFileVault::open(dir.path(), PIN, &other).err(),
            Some(VaultError::WrongDeviceSecret)
        );
    }
    assert_eq!(fs::read(dir.path().join("pin-attempts")).unwrap(), [0; 4]);
    open(dir.path()).unwrap();
    // A vault from before the device check: the old behaviour (counted as a
    // wrong PIN: the key cannot tell), and the right open writes the check.
    fs::remove_file(dir.path().join("device-check")).unwrap();
    assert_eq!(
        SealedFileVault::open(dir.path(), PIN, &other).err(),
        Some(VaultError::WrongPin { attempts_left: 4 })
    );
    open(dir.path()).unwrap();
    assert_eq!(
        SealedFileVault::open(dir.path(), PIN, &other).err(),
        Some(VaultError::WrongDeviceSecret)
    );
    // A file sealed by another vault (other salt, same PIN and secret) does
    // not load under this vault's key.
    let dir2 = tempfile::tempdir().unwrap();
    let mut v2 = create(dir2.path());
    v2.commit(b"x").unwrap();
    fs::copy(state_path(dir2.path()), state_path(dir.path())).unwrap();
    assert_eq!(v.load(), Err(VaultError::Tampered));
}

#[test]
fn vault_tampered_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut v = create(d);
    v.commit(b"the balance is 100").unwrap();
    let original = fs::read(state_path(d)).unwrap();
    for i in 0..original.len() {
        for mask in [0x01u8, 0x80] {
            let mut file = original.clone();
            file[i] ^= mask;
            fs::write(state_path(d), &file).unwrap();
            // An open vault detects every change.
            assert_eq!(
                v.load(),
                Err(VaultError::Tampered),
                "byte {i} mask {mask:#x}"
            );
        }
        // A fresh open never succeeds: the KDF inputs and the check value
        // give WrongPin, everything else Tampered.
        let mut file = original.clone();
        file[i] ^= 0x01;
        fs::write(state_path(d), &file).unwrap();
        match open(d) {
            // Magic, format version, out-of-range KDF parameters, or the
            // AEAD-covered part.
            Err(VaultError::Tampered) => assert!(!(17..49).contains(&i), "byte {i}"),
            Err(VaultError::WrongPin { .. }) => assert!((5..49).contains(&i), "byte {i}"),
            other => panic!("byte {i}: {other:?}"),
        }
        SealedFileVault::reset_pin_attempts(d).unwrap();
    }
    fs::write(state_path(d), &original).unwrap();
    assert_eq!(
        v.load().unwrap().state.as_deref(),
        Some(&b"the balance is 100"[..])
    );
}

#[test]
fn vault_truncated_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut v = create(d);
    v.commit(b"some state bytes").unwrap();
    let original = fs::read(state_path(d)).unwrap();
    for len in 0..original.len() {
        fs::write(state_path(d), &original[..len]).unwrap();
        assert_eq!(v.load(), Err(VaultError::Tampered), "len {len}");
        assert_eq!(open(d).err(), Some(VaultError::Tampered), "len {len}");
    }
    let mut longer = original.clone();
    longer.push(0);
    fs::write(state_path(d), &longer).unwrap();
    assert_eq!(v.load(), Err(VaultError::Tampered));
    fs::write(state_path(d), &original).unwrap();
    assert!(v.load().is_ok());
}

#[test]
fn vault_restored_old_state_is_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut v = create(d);
    v.commit(b"balance 100").unwrap();
    let saved = fs::read(state_path(d)).unwrap();
    v.commit(b"balance 60").unwrap();
    v.commit(b"balance 10").unwrap();
    fs::write(state_path(d), &saved).unwrap();

    let expected = Some(RollbackDetected {
        state_version: 1,
        counter: 3,
    });
    // Seen by the running vault and after a reopen.
    let l = v.load().unwrap();
    assert_eq!(l.state.as_deref(), Some(&b"balance 100"[..]));
    assert_eq!((l.version, l.rollback), (1, expected));
    drop(v);
    let mut v = open(d).unwrap();
    let l = v.load().unwrap();
    assert_eq!((l.version, l.rollback), (1, expected));
    // The counter was not touched.
    assert_eq!(FileCounter::open(&d.join("counter")).unwrap().read(), Ok(3));

    // The TA persists its lock: a newer version, no rollback any more.
    v.commit(b"locked").unwrap();
    let l = v.load().unwrap();
    assert_eq!((l.version, l.rollback), (4, None));

    // Restoring the version-0 (empty) file is a rollback too.
    let dir2 = tempfile::tempdir().unwrap();
    let mut w = create(dir2.path());
    let empty = fs::read(state_path(dir2.path())).unwrap();
    w.commit(b"a").unwrap();
    fs::write(state_path(dir2.path()), &empty).unwrap();
    let l = w.load().unwrap();
    assert_eq!(l.state, None);
    assert_eq!(
        l.rollback,
        Some(RollbackDetected {
            state_version: 0,
            counter: 1
        })
    );
}

#[test]
fn vault_counter_never_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let mut c = FileCounter::create(&path).unwrap();
    assert_eq!(
        FileCounter::create(&path).err(),
        Some(VaultError::AlreadyExists)
    );
    assert_eq!(c.read(), Ok(0));
    c.advance_to(2).unwrap();
    let old = fs::read(&path).unwrap();
    c.advance_to(2).unwrap();
    c.advance_to(5).unwrap();
    assert_eq!(c.advance_to(4), Err(VaultError::CounterRegressed));
    assert_eq!(c.read(), Ok(5));
    // A counter file restored under a running handle is refused.
    fs::write(&path, &old).unwrap();
    assert_eq!(c.read(), Err(VaultError::CounterRegressed));
    assert_eq!(c.advance_to(9), Err(VaultError::CounterRegressed));
    // A new handle has no memory (the documented limit of a file counter).
    assert_eq!(FileCounter::open(&path).unwrap().read(), Ok(2));
    fs::write(&path, b"garbage").unwrap();
    assert!(matches!(
        FileCounter::open(&path),
        Err(VaultError::Corrupt(_))
    ));
    assert_eq!(
        FileCounter::open(&dir.path().join("none")).err(),
        Some(VaultError::NotFound)
    );
}

#[test]
fn vault_counter_file_attacks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let counter = d.join("counter");
    let mut v = create(d);
    v.commit(b"1").unwrap();
    let c1 = fs::read(&counter).unwrap();
    v.commit(b"2").unwrap();
    v.commit(b"3").unwrap();

    // Old counter with the current state: two versions ahead, impossible
    // after a crash.
    fs::write(&counter, &c1).unwrap();
    let mut v = open(d).unwrap();
    assert!(matches!(v.load(), Err(VaultError::Corrupt(_))));
    assert!(matches!(v.commit(b"4"), Err(VaultError::Corrupt(_))));
    // A missing counter file locks too.
    fs::remove_file(&counter).unwrap();
    assert!(matches!(v.load(), Err(VaultError::Corrupt(_))));
}

#[test]
fn vault_interrupted_commit_is_completed_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let counter = d.join("counter");
    let mut v = create(d);
    v.commit(b"1").unwrap();
    let c1 = fs::read(&counter).unwrap();
    v.commit(b"2").unwrap();
    drop(v);
    // As if the process died between writing the state and the counter.
    fs::write(&counter, &c1).unwrap();
    let mut v = open(d).unwrap();
    let l = v.load().unwrap();
    assert_eq!(
        (l.state.as_deref(), l.version, l.rollback),
        (Some(&b"2"[..]), 2, None)
    );
    assert_eq!(FileCounter::open(&counter).unwrap().read(), Ok(2));
    v.commit(b"3").unwrap();
    assert_eq!(v.load().unwrap().version, 3);
}

#[test]
fn vault_faulty_commit_then_retry_on_same_handle() {
    // A failed commit leaves the handle unsynced; once the file system
    // works again, the next commit repairs first and stays consistent.
    for k in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut v = create(d);
        v.commit(b"old").unwrap();
        let faulty = FaultyFs::new(k);
        v = v.with_fs(Box::new(faulty.clone()));
        assert_eq!(v.commit(b"new"), Err(VaultError::Crashed), "k {k}");
        assert!(faulty.fired());
        v = v.with_fs(Box::new(RealFs));
        v.commit(b"newer").unwrap();
        let l = v.load().unwrap();
        assert_eq!(
            (l.state.as_deref(), l.rollback),
            (Some(&b"newer"[..]), None)
        );
        let mut reopened = open(d).unwrap();
        assert_eq!(reopened.load().unwrap(), l);
        // Ops 0..4 write the state (renamed at op 2), ops 4..8 the counter.
        let expected = if k >= 3 { 3 } else { 2 };
        assert_eq!(l.version, expected, "k {k}");
    }
}

#[test]
fn vault_timings() {
    // The only test that pays for INTERACTIVE, once.
    let start = Instant::now();
    let key = sealed::derive_key(PIN, &SECRET, KdfParams::INTERACTIVE, &[1u8; 16]).unwrap();
    let kdf = start.elapsed();
    assert_ne!(*key, [0u8; 32]);

    let dir = tempfile::tempdir().unwrap();
    let mut v = create(dir.path());
    let state = vec![0x42u8; 4096];
    let n = 20u32;
    let start = Instant::now();
    for _ in 0..n {
        v.commit(&state).unwrap();
    }
    let commit = start.elapsed() / n;
    eprintln!(
        "vault timings: one Argon2id INTERACTIVE derivation {kdf:?}; \
         one commit of 4 KiB (2 atomic writes, 4 fsyncs) {commit:?} (mean of {n})"
    );
}

// ---- SealedVault over a BlobStore -------------------------------------------

use offpay_protocol::entropy::{OsEntropy, SeededEntropy};

type BlobVault = SealedVault<MemoryBlobStore, MemoryCounter>;

fn blob_create(store: &MemoryBlobStore, counter: &MemoryCounter) -> BlobVault {
    SealedVault::create(
        store.clone(),
        counter.clone(),
        PIN,
        &SECRET,
        KdfParams::TEST,
        OsEntropy::shared(),
    )
    .unwrap()
}

fn blob_open(store: &MemoryBlobStore, counter: &MemoryCounter) -> Result<BlobVault, VaultError> {
    SealedVault::open(
        store.clone(),
        counter.clone(),
        PIN,
        &SECRET,
        OsEntropy::shared(),
    )
}

const BLOBS: [&str; 3] = ["state.sealed", "pin-attempts", "device-check"];

fn counter_file_value(dir: &Path) -> u64 {
    let bytes = fs::read(dir.join("counter")).unwrap();
    assert_eq!(&bytes[..4], b"OFPC");
    u64::from_le_bytes(bytes[4..].try_into().unwrap())
}

#[test]
fn vault_blob_round_trip() {
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut v = blob_create(&store, &counter);
    assert_eq!(
        store.names(),
        ["device-check", "pin-attempts", "state.sealed"]
    );
    let l = v.load().unwrap();
    assert_eq!((l.state, l.version, l.rollback), (None, 0, None));
    v.commit(b"first").unwrap();
    v.commit(b"second state").unwrap();
    assert_eq!(counter.value(), 2);
    assert_eq!(v.kdf_params(), KdfParams::TEST);
    let (s2, c2) = v.into_parts();
    assert_eq!(s2.get("state.sealed"), store.get("state.sealed"));
    assert_eq!(c2.value(), 2);
    let mut v = blob_open(&store, &counter).unwrap();
    let l = v.load().unwrap();
    assert_eq!(l.state.as_deref(), Some(&b"second state"[..]));
    assert_eq!((l.version, l.rollback), (2, None));
    // Commit without load re-reads first.
    let mut v2 = blob_open(&store, &counter).unwrap();
    v2.commit(b"").unwrap();
    assert_eq!(v.load().unwrap().state, Some(vec![]));
    assert_eq!(counter.value(), 3);
    let sealed = store.get("state.sealed").unwrap();
    assert!(!sealed.windows(6).any(|w| w == b"second"));
    assert_eq!(
        v.commit(&vec![0; STATE_BYTES_MAX + 1]),
        Err(VaultError::TooLarge)
    );
    assert_eq!(v.load().unwrap().version, 3);
}

#[test]
fn vault_blob_same_bytes_as_the_file_vault() {
    // The same seed, PIN, secret and commits: the blobs are the files, byte for
    // byte, and the counter is the counter file's value.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut f = SealedFileVault::create_with_entropy(
        d,
        PIN,
        &SECRET,
        KdfParams::TEST,
        Box::new(RealFs),
        SeededEntropy::shared(7, "vault"),
    )
    .unwrap();
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut b = SealedVault::create(
        store.clone(),
        counter.clone(),
        PIN,
        &SECRET,
        KdfParams::TEST,
        SeededEntropy::shared(7, "vault"),
    )
    .unwrap();
    let same = |d: &Path, store: &MemoryBlobStore, counter: &MemoryCounter| {
        for name in BLOBS {
            assert_eq!(
                store.get(name),
                Some(fs::read(d.join(name)).unwrap()),
                "{name}"
            );
        }
        assert_eq!(counter.value(), counter_file_value(d));
    };
    same(d, &store, &counter);
    for state in [&b"one"[..], b"", &[0x5a; 3000]] {
        f.commit(state).unwrap();
        b.commit(state).unwrap();
        same(d, &store, &counter);
    }
    // A wrong PIN, then a right one: the same pin-attempts bytes.
    drop((f, b));
    assert!(SealedFileVault::open(d, b"0000", &SECRET).is_err());
    assert!(
        SealedVault::open(
            store.clone(),
            counter.clone(),
            b"0000",
            &SECRET,
            OsEntropy::shared()
        )
        .is_err()
    );
    same(d, &store, &counter);
    assert_eq!(store.get("pin-attempts").unwrap(), 1u32.to_le_bytes());
    let mut f = open(d).unwrap();
    let mut b = blob_open(&store, &counter).unwrap();
    same(d, &store, &counter);
    assert_eq!(f.load().unwrap(), b.load().unwrap());

    // The files of a directory, copied into a store, open as the same vault.
    let copy = MemoryBlobStore::new();
    for name in BLOBS {
        copy.put(name, &fs::read(d.join(name)).unwrap());
    }
    let mut c = blob_open(&copy, &MemoryCounter::new(counter_file_value(d))).unwrap();
    assert_eq!(c.load().unwrap(), f.load().unwrap());
    // And the blobs, written as files, open as a file vault.
    let dir2 = tempfile::tempdir().unwrap();
    for name in BLOBS {
        fs::write(dir2.path().join(name), store.get(name).unwrap()).unwrap();
    }
    FileCounter::create(&dir2.path().join("counter"))
        .unwrap()
        .advance_to(counter.value())
        .unwrap();
    assert_eq!(
        open(dir2.path()).unwrap().load().unwrap(),
        b.load().unwrap()
    );
}

#[test]
fn vault_blob_create_refusals_write_nothing() {
    let store = MemoryBlobStore::new();
    let used = MemoryCounter::new(1);
    let create = |store: &MemoryBlobStore, counter: &MemoryCounter, kdf| {
        SealedVault::create(
            store.clone(),
            counter.clone(),
            PIN,
            &SECRET,
            kdf,
            OsEntropy::shared(),
        )
        .err()
    };
    assert_eq!(
        create(&store, &used, KdfParams::TEST),
        Some(VaultError::CounterNotFresh)
    );
    assert_eq!(store.names(), Vec::<String>::new());
    assert_eq!(used.value(), 1);
    let bad = KdfParams {
        m_kib: 4,
        t: 1,
        p: 1,
    };
    let fresh = MemoryCounter::new(0);
    assert_eq!(
        create(&store, &fresh, bad),
        Some(VaultError::InvalidKdfParams)
    );
    assert_eq!(store.names(), Vec::<String>::new());
    assert_eq!(blob_open(&store, &fresh).err(), Some(VaultError::NotFound));
    let mut v = blob_create(&store, &fresh);
    v.commit(b"money").unwrap();
    let before: Vec<_> = BLOBS.iter().map(|n| store.get(n)).collect();
    // A second create over it: refused before the counter is even looked at.
    assert_eq!(
        create(&store, &MemoryCounter::new(0), KdfParams::TEST),
        Some(VaultError::AlreadyExists)
    );
    assert_eq!(
        create(&store, &fresh, KdfParams::TEST),
        Some(VaultError::AlreadyExists)
    );
    let after: Vec<_> = BLOBS.iter().map(|n| store.get(n)).collect();
    assert_eq!(before, after);
    assert_eq!(v.load().unwrap().state.as_deref(), Some(&b"money"[..]));
    assert!(
        VaultError::CounterNotFresh
            .to_string()
            .contains("one counter per wallet")
    );
}

#[test]
fn vault_blob_pin_attempts_and_device_secret() {
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    blob_create(&store, &counter).commit(b"x").unwrap();
    let wrong = || {
        SealedVault::open(
            store.clone(),
            counter.clone(),
            b"999999",
            &SECRET,
            OsEntropy::shared(),
        )
        .err()
    };
    assert_eq!(wrong(), Some(VaultError::WrongPin { attempts_left: 4 }));
    blob_open(&store, &counter).unwrap();
    for left in (0..PIN_ATTEMPTS_MAX).rev() {
        assert_eq!(
            wrong(),
            Some(VaultError::WrongPin {
                attempts_left: left
            })
        );
    }
    assert_eq!(
        blob_open(&store, &counter).err(),
        Some(VaultError::PinAttemptsExhausted)
    );
    store.put("pin-attempts", &0u32.to_le_bytes());
    let mut other = SECRET;
    other[0] ^= 1;
    for _ in 0..PIN_ATTEMPTS_MAX + 1 {
        assert_eq!(
            SealedVault::open(
                store.clone(),
                counter.clone(),
                PIN,
                &other,
                OsEntropy::shared()
            )
            .err(),
            Some(VaultError::WrongDeviceSecret)
        );
    }
    assert_eq!(store.get("pin-attempts").unwrap(), [0; 4]);
    // A host that lost or garbled pin-attempts: fail closed.
    store.remove("pin-attempts");
    assert_eq!(
        blob_open(&store, &counter).err(),
        Some(VaultError::PinAttemptsUnreadable)
    );
    store.put("pin-attempts", &[0; 5]);
    assert_eq!(
        blob_open(&store, &counter).err(),
        Some(VaultError::PinAttemptsUnreadable)
    );
    store.put("pin-attempts", &0u32.to_le_bytes());
    store.put("device-check", &[0; 3]);
    assert!(matches!(
        blob_open(&store, &counter).err(),
        Some(VaultError::Corrupt(_))
    ));
}

#[test]
fn vault_blob_rollback_of_the_state_blob_alone() {
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut v = blob_create(&store, &counter);
    v.commit(b"balance 100").unwrap();
    let saved = store.get("state.sealed").unwrap();
    v.commit(b"balance 60").unwrap();
    v.commit(b"balance 10").unwrap();
    store.put("state.sealed", &saved);
    let expected = Some(RollbackDetected {
        state_version: 1,
        counter: 3,
    });
    let l = v.load().unwrap();
    assert_eq!(l.state.as_deref(), Some(&b"balance 100"[..]));
    assert_eq!((l.version, l.rollback), (1, expected));
    let mut v = blob_open(&store, &counter).unwrap();
    assert_eq!(v.load().unwrap().rollback, expected);
    assert_eq!(counter.value(), 3, "the counter was not touched");
    v.commit(b"locked").unwrap();
    assert_eq!(
        (v.load().unwrap().version, v.load().unwrap().rollback),
        (4, None)
    );
    // An old counter with the current state: two ahead, no crash does that.
    let mut w = blob_open(&store, &MemoryCounter::new(2)).unwrap();
    assert!(matches!(w.load(), Err(VaultError::Corrupt(_))));
    // The state blob removed or edited under a running vault.
    let good = store.remove("state.sealed").unwrap();
    assert_eq!(v.load(), Err(VaultError::Tampered));
    let mut edited = good.clone();
    *edited.last_mut().unwrap() ^= 1;
    store.put("state.sealed", &edited);
    assert_eq!(v.load(), Err(VaultError::Tampered));
    store.put("state.sealed", &good);
    assert_eq!(v.load().unwrap().state.as_deref(), Some(&b"locked"[..]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes in place of the sealed file: never a panic, never Ok
    /// unless the bytes are the real file.
    #[test]
    fn vault_garbage_files_never_panic(garbage in proptest::collection::vec(any::<u8>(), 0..300), keep_header in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut v = create(d);
        v.commit(b"state").unwrap();
        let original = fs::read(state_path(d)).unwrap();
        let mut file = garbage.clone();
        if keep_header {
            // Keep a valid header so that parsing reaches the AEAD.
            let n = 81.min(file.len());
            file[..n].copy_from_slice(&original[..n]);
        }
        prop_assume!(file != original);
        fs::write(state_path(d), &file).unwrap();
        prop_assert!(v.load().is_err());
        prop_assert!(open(d).is_err());
    }
}
