//! Keychains bound to a file: every change of state is written before it is
//! used, rotation happens by itself at the policy limit, and nothing saved
//! is ever lost or overwritten by a failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keystrata::{
    AgeRoot, ErrorKind, EventKind, KeyManager, Keychain, PassphraseRoot, Policy, Root,
};

fn small_policy(max: u64, block: u64) -> Policy {
    Policy {
        max_encryptions_per_key: max,
        usage_block: block,
        ..Policy::default()
    }
}

fn key_id(ct: &[u8]) -> u32 {
    u32::from_be_bytes([ct[1], ct[2], ct[3], ct[4]])
}

#[test]
fn open_creates_then_reopens_the_same_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let kc = Keychain::open(&path, &root).unwrap();
    assert!(kc.is_bound());
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    let ct = kc.seal(b"hello", b"").unwrap();
    let keys = kc.keys().expect("keys");
    drop(kc);
    let again = Keychain::open(&path, &root).unwrap();
    assert_eq!(again.unseal(&ct, b"").unwrap(), b"hello");
    assert_eq!(
        again
            .keys()
            .expect("keys")
            .iter()
            .map(|k| k.key_id)
            .collect::<Vec<_>>(),
        keys.iter().map(|k| k.key_id).collect::<Vec<_>>()
    );
    // No temporary files are left behind: only the keychain and the
    // writers' lock file.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".kc.age.lock", "kc.age"]);
}

#[test]
fn every_change_is_in_the_file_before_it_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let kc = Keychain::open_with_policy(&path, &root, Some(small_policy(1 << 32, 4))).unwrap();
    let on_disk = || Keychain::load_file(&path, &root).unwrap();

    let p2 = kc.rotate().unwrap();
    assert_eq!(on_disk().primary().unwrap().key_id, p2.key_id);
    let added = kc.add_key(keystrata::Purpose::Encrypt).unwrap();
    assert!(on_disk()
        .keys()
        .expect("keys")
        .iter()
        .any(|k| k.key_id == added.key_id));
    kc.promote(added.key_id).unwrap();
    assert_eq!(on_disk().primary().unwrap().key_id, added.key_id);
    kc.disable(p2.key_id).unwrap();
    assert_eq!(
        on_disk()
            .keys()
            .expect("keys")
            .iter()
            .find(|k| k.key_id == p2.key_id)
            .unwrap()
            .status,
        keystrata::KeyStatus::Disabled
    );

    // Usage: after n encryptions the file has reserved at least n, and at
    // most one block ahead (blocks grow when used up fast, doubling from
    // usage_block = 4 up to 4 << 10; see Policy::usage_block).
    let mut last = 0;
    for n in 1..=10u64 {
        kc.seal(b"x", b"").unwrap();
        let usage = on_disk().primary().unwrap().usage;
        assert!(usage >= n, "file reserves {usage} < {n} used");
        assert!(
            usage <= n + (4 << 10),
            "file reserves {usage}, more than one block ahead of {n}"
        );
        assert!(usage >= last, "the reservation went back");
        last = usage;
    }
}

#[test]
fn bound_keychain_rotates_by_itself_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let kc = Keychain::open_with_policy(&path, &root, Some(small_policy(3, 2))).unwrap();
    let rotations: Arc<Mutex<Vec<(u32, bool)>>> = Arc::default();
    let r2 = Arc::clone(&rotations);
    kc.subscribe(move |e| {
        if e.kind == EventKind::KeyRotated {
            r2.lock().unwrap().push((e.key_id.unwrap(), e.automatic));
        }
    })
    .unwrap();
    let mut cts = Vec::new();
    for i in 0..10u32 {
        cts.push((i, kc.seal(&i.to_be_bytes(), b"").unwrap()));
    }
    let mut per_key: HashMap<u32, u32> = HashMap::new();
    for (_, ct) in &cts {
        *per_key.entry(key_id(ct)).or_default() += 1;
    }
    assert_eq!(per_key.len(), 4, "10 seals at 3 per key use 4 keys");
    assert!(per_key.values().all(|n| *n <= 3));
    let rot = rotations.lock().unwrap().clone();
    assert_eq!(rot.len(), 3);
    assert!(rot.iter().all(|(_, auto)| *auto));
    assert_eq!(kc.counters().rotations, 3);
    let loaded = Keychain::load_file(&path, &root).unwrap();
    for (i, ct) in &cts {
        assert_eq!(loaded.unseal(ct, b"").unwrap(), i.to_be_bytes());
    }
}

#[test]
fn a_file_that_does_not_open_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    Keychain::open(&path, &root).unwrap();
    let before = std::fs::read(&path).unwrap();

    let e = Keychain::open(&path, &AgeRoot::generate()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    let pass = PassphraseRoot::with_work_factor("pw", 10).unwrap();
    assert_eq!(
        Keychain::open(&path, &pass).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let mut bad = before.clone();
    let n = bad.len();
    bad[n - 5] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(
        Keychain::open(&path, &root).unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(std::fs::read(&path).unwrap(), bad);
    std::fs::write(&path, &before[..50]).unwrap();
    assert_eq!(
        Keychain::open(&path, &root).unwrap_err().kind(),
        ErrorKind::Format
    );
    assert_eq!(std::fs::read(&path).unwrap(), &before[..50]);
}

#[test]
fn a_failed_write_changes_nothing_and_returns_no_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("kc.age");
    let root = AgeRoot::generate();
    let kc = Keychain::open_with_policy(&path, &root, Some(small_policy(1 << 32, 1))).unwrap();
    kc.seal(b"first", b"").unwrap();
    let primary = kc.primary().unwrap();
    std::fs::remove_dir_all(&sub).unwrap();

    assert_eq!(kc.rotate().unwrap_err().kind(), ErrorKind::Io);
    assert_eq!(
        kc.primary().unwrap().key_id,
        primary.key_id,
        "rotation applied without being saved"
    );
    // With a block of 1, the next seal needs a write: it must fail rather
    // than hand out a count the store never recorded.
    assert_eq!(kc.seal(b"second", b"").unwrap_err().kind(), ErrorKind::Io);
    assert_eq!(kc.counters().errors_of(ErrorKind::Io), 2);
    // The directory comes back: everything works again.
    std::fs::create_dir(&sub).unwrap();
    let ct = kc.seal(b"third", b"").unwrap();
    assert_eq!(
        Keychain::load_file(&path, &root)
            .unwrap()
            .unseal(&ct, b"")
            .unwrap(),
        b"third"
    );
}

#[test]
fn an_unbound_keychain_saved_to_a_file_stays_unbound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let kc = Keychain::generate_with_policy(small_policy(1, 1)).unwrap();
    kc.save_file(&path, &root).unwrap();
    kc.seal(b"x", b"").unwrap();
    assert_eq!(kc.seal(b"x", b"").unwrap_err().kind(), ErrorKind::Policy);
    assert_eq!(
        kc.keys().expect("keys").len(),
        2,
        "an unbound keychain never rotates by itself"
    );
    let loaded = Keychain::load_file(&path, &root).unwrap();
    assert!(!loaded.is_bound());
    assert_eq!(
        Keychain::load_file(dir.path().join("absent"), &root)
            .unwrap_err()
            .kind(),
        ErrorKind::Io
    );
    assert_eq!(
        keystrata::write_atomic(dir.path(), b"x")
            .unwrap_err()
            .kind(),
        ErrorKind::Io
    );
}

#[test]
fn root_as_key_manager() {
    // The age roots are KeyManagers too.
    let age = AgeRoot::generate();
    let pass = PassphraseRoot::with_work_factor("pw", 10).unwrap();
    for km in [&age as &dyn KeyManager, &pass as &dyn KeyManager] {
        let env = km.wrap_key(&[9u8; 32], b"ctx").unwrap();
        assert_eq!(env.provider, km.provider());
        assert_eq!(km.active_key_version().unwrap(), 1);
        assert_eq!(
            km.unwrap_key(&env, b"ctx").unwrap().expose_secret(),
            &[9u8; 32]
        );
        assert_eq!(
            km.unwrap_key(&env, b"other").unwrap_err().kind(),
            ErrorKind::Authentication
        );
        let mut e = env.clone();
        e.provider = "keystrata".into();
        assert_eq!(
            km.unwrap_key(&e, b"ctx").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        km.health_check().unwrap();
    }
    age.close().unwrap();
    age.close().unwrap();
    assert_eq!(
        age.health_check().unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        age.protect(b"x").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        age.wrap_key(&[1; 16], b"").unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

#[test]
fn leftovers_of_killed_writers_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    drop(Keychain::open(&path, &root).unwrap());
    // PID 999999999 is above any Linux pid_max: that writer is gone. Our
    // own PID stands for a writer still at work.
    let dead = dir.path().join(".kc.age.tmp-999999999-00000000000000ab");
    let live = dir.path().join(format!(
        ".kc.age.tmp-{}-00000000000000cd",
        std::process::id()
    ));
    let other = dir.path().join(".other.age.tmp-999999999-00000000000000ef");
    for f in [&dead, &live, &other] {
        std::fs::write(f, b"half a keychain").unwrap();
    }
    let kc = Keychain::open(&path, &root).unwrap();
    kc.seal(b"x", b"").unwrap();
    assert!(!dead.exists(), "a dead writer's temporary file was left");
    assert!(live.exists(), "a live writer's temporary file was removed");
    assert!(other.exists(), "another keychain's file was touched");
}

#[cfg(unix)]
#[test]
fn a_symlinked_keychain_is_followed_and_the_link_kept() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    std::fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("kc.age");
    let link = dir.path().join("link.age");
    let root = AgeRoot::generate();
    drop(Keychain::open(&target, &root).unwrap());
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let kc = Keychain::open(&link, &root).unwrap();
    let r = kc.rotate().unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the first save replaced the link with a file"
    );
    let via_target = Keychain::load_file(&target, &root).unwrap();
    assert!(via_target
        .keys()
        .expect("keys")
        .iter()
        .any(|k| k.key_id == r.key_id));
    // Handles through the link and through the target share one lock and
    // one file: neither loses the other's keys.
    let direct = Keychain::open(&target, &root).unwrap();
    let r2 = direct.rotate().unwrap();
    let r3 = kc.rotate().unwrap();
    let ids: Vec<u32> = Keychain::load_file(&target, &root)
        .unwrap()
        .keys()
        .expect("keys")
        .iter()
        .map(|k| k.key_id)
        .collect();
    assert!(ids.contains(&r2.key_id) && ids.contains(&r3.key_id));
}

#[test]
fn a_location_that_names_no_file_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = AgeRoot::generate();
    for loc in [dir.path().join(".."), dir.path().join("sub/..")] {
        let e = Keychain::open(&loc, &root).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Io),
            "{loc:?}: {e}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let parent_lock = dir.path().parent().unwrap().join("..lock");
    assert!(!parent_lock.exists());
}

/// Calls `f` until it gives `want` (an error kind, or `None` for success),
/// with a generous deadline: another writer's change is adopted at the
/// first call after the refresh interval (at least one 50 ms tick).
fn until_kind(want: Option<ErrorKind>, what: &str, f: impl Fn() -> keystrata::Result<Vec<u8>>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = f().err().map(|e| e.kind());
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {got:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_handle_that_only_decrypts_sees_keys_other_writers_disable_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root = AgeRoot::generate();
    let writer = Keychain::open(&path, &root).unwrap();
    // Looks for other writers' changes at the first call of each tick.
    let reader = keystrata::OpenOptions::new()
        .refresh(std::time::Duration::ZERO)
        .open(&path, &root)
        .unwrap();
    let ct = writer.seal(b"doc", b"").unwrap();
    let blob = writer.encrypt(b"doc", b"").unwrap();
    let old = key_id(&ct);
    assert_eq!(reader.unseal(&ct, b"").unwrap(), b"doc");
    writer.rotate().unwrap();
    writer.disable(old).unwrap();
    // The reader never encrypts: its decryptions see each change.
    until_kind(Some(ErrorKind::KeyDisabled), "unseal", || {
        reader.unseal(&ct, b"")
    });
    assert_eq!(
        reader.decrypt(&blob, b"").unwrap_err().kind(),
        ErrorKind::KeyDisabled
    );
    writer.enable(old).unwrap();
    until_kind(None, "decrypt", || reader.decrypt(&blob, b""));
    writer.destroy(old).unwrap();
    until_kind(Some(ErrorKind::KeyDestroyed), "unseal", || {
        reader.unseal(&ct, b"")
    });
    assert!(reader.counters().encrypt == 0 && reader.counters().seal == 0);
}

/// A store whose cheap checks never see another writer's change, as an
/// etcd watch that has not delivered it yet (a loaded machine): only
/// `changed_fresh` asks the file itself.
struct Lagging(Arc<dyn keystrata::store::Store>);

impl keystrata::store::Store for Lagging {
    fn location(&self) -> &str {
        self.0.location()
    }
    fn load(&self) -> keystrata::Result<Option<keystrata::store::Versioned>> {
        self.0.load()
    }
    fn compare_and_swap(
        &self,
        expected: Option<keystrata::store::Revision>,
        bytes: &[u8],
    ) -> keystrata::Result<keystrata::store::Swap> {
        self.0.compare_and_swap(expected, bytes)
    }
    fn changed(&self, _since: keystrata::store::Revision) -> keystrata::Result<bool> {
        Ok(false)
    }
    fn changed_now(&self, _since: keystrata::store::Revision) -> Option<bool> {
        Some(false)
    }
    fn changed_fresh(&self, since: keystrata::store::Revision) -> keystrata::Result<bool> {
        self.0.changed_fresh(since)
    }
    fn lock_for_update(&self) -> keystrata::Result<Option<keystrata::store::UpdateGuard<'_>>> {
        self.0.lock_for_update()
    }
}

/// Found by `make test`'s etcd suite under stress-ng: a ciphertext under a
/// key another handle made a moment ago failed with UnknownKey when the
/// watch had not delivered that write yet and a forced reload had already
/// happened in the same 50 ms tick. Here the cheap checks never see the
/// change, and 40 rotations follow each other as fast as they go (many in
/// one tick): every one must decrypt at once in the other handle.
#[test]
fn a_key_made_a_moment_ago_decrypts_although_the_cheap_check_lags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kc.age");
    let root: Arc<dyn Root> = Arc::new(AgeRoot::generate());
    let open = || {
        let store = keystrata::store::open_location(&path).unwrap();
        keystrata::OpenOptions::new()
            .refresh(std::time::Duration::from_secs(3600))
            .open_store(Arc::new(Lagging(store)), root.clone())
            .unwrap()
    };
    let (a, b) = (open(), open());
    for i in 0..40u8 {
        let made = a.rotate().unwrap();
        let ct = a.seal(&[i], b"").unwrap();
        assert_eq!(key_id(&ct), made.key_id);
        assert_eq!(b.unseal(&ct, b"").expect("the new key, at once"), [i]);
    }
}
