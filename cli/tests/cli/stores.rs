//! `--keychain etcd://…`: the same commands on a keychain in etcd, when
//! the cluster of scripts/peers.sh runs.

use std::path::PathBuf;

use crate::common::{peers_required, write_age_identity, Env};

#[test]
fn an_etcd_location_when_the_cluster_is_there() {
    let (Ok(endpoints), Ok(prefix)) = (
        std::env::var("KS_TEST_ETCD_ENDPOINTS"),
        std::env::var("KS_TEST_ETCD_PREFIX"),
    ) else {
        assert!(
            !peers_required(),
            "KEYSTRATA_REQUIRE_PEERS=1 but no etcd peer: eval \"$(bash scripts/peers.sh start)\""
        );
        eprintln!("skipped: no etcd peer (KS_TEST_ETCD_*)");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let key = |what: &str| {
        format!(
            "etcd://{endpoints}{prefix}cli-{what}-{}-{nanos}",
            std::process::id()
        )
    };
    let mut e = Env::age();
    let loc = key("main");
    e.keychain = PathBuf::from(&loc);

    let v = e.ks(&["keychain", "new", "--json"]).ok().json();
    assert_eq!(v["location"], loc);
    e.ks(&["keychain", "new"]).fails(11).says("exists already");
    e.ks(&["keychain", "rotate", "--purpose", "stream"]).ok();
    let ct = e
        .ks_in(&["seal", "--aad", "etcd"], b"in the cluster")
        .ok()
        .stdout;
    assert_eq!(
        e.ks_in(&["unseal", "--aad", "etcd"], &ct).ok().stdout,
        b"in the cluster"
    );
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let st = e.ks_in(&["encrypt"], &big).ok().stdout;
    assert!(e.ks_in(&["decrypt"], &st).ok().stdout == big);
    assert_eq!(e.keys().len(), 3);
    // Migrated to another key of the cluster under another root.
    let id = e.path("other.txt");
    write_age_identity(&id);
    let other_root = format!("age:{}", id.display());
    let dest = key("moved");
    e.ks(&[
        "keychain",
        "migrate",
        "--to-root",
        &other_root,
        "--to-keychain",
        &dest,
    ])
    .ok();
    let moved = e
        .ks(&[
            "keychain",
            "show",
            "--json",
            "--keychain",
            &dest,
            "--root",
            &other_root,
        ])
        .ok()
        .json();
    assert_eq!(moved["keys"].as_array().map(Vec::len), Some(3));
    // A key with nothing in it.
    e.ks(&["keychain", "show", "--keychain", &key("empty")])
        .fails(21)
        .says("no keychain at");
}
