//! Black-box tests of `amq2api keys ...`: the created key is the stored hash's preimage and
//! nowhere in the database; listing, expiry, revocation.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{cells, contains, stderr, stdout, TestDir};

#[test]
fn create_prints_only_the_key_and_stores_only_its_hash() {
    let t = TestDir::new();
    let out = t.run(&["keys", "create", "--name", "ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out);
    assert!(key.ends_with('\n') && key.lines().count() == 1);
    let key = key.trim_end();
    assert!(key.starts_with("sk-amq-"), "{key}");
    assert_eq!(key.len(), "sk-amq-".len() + 44);
    let note = stderr(&out);
    assert!(
        note.starts_with(&format!("Created key ci ({}, id 1)", &key[..12])),
        "{note}"
    );
    assert!(!note.contains(key));

    let pool = t.pool();
    let rows = amq2api::db::api_keys::list(&mut pool.get().unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].key_hash,
        hex::encode(Sha256::digest(key.as_bytes()))
    );
    assert_eq!(rows[0].prefix, &key[..12]);
    let hash = amq2api::db::api_keys::HashedKey::of(key);
    assert!(
        amq2api::db::api_keys::find_live(&mut pool.get().unwrap(), &hash, amq2api::db::now())
            .unwrap()
            .is_some()
    );
    drop(pool);
    let bytes = t.db_bytes();
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, key.as_bytes()),
        "the plaintext key is in the database file"
    );
    assert!(!contains(&bytes, &key.as_bytes()[12..]));
}

#[test]
fn list_json_and_table() {
    let t = TestDir::new();
    let k1 = t.ok(&["keys", "create", "--name", "ci"]);
    t.ok(&[
        "keys",
        "create",
        "--name",
        "ops",
        "--admin",
        "--rpm",
        "60",
        "--expires",
        "2099-01-31",
    ]);
    let keys: Vec<Value> = t
        .json(&["keys", "list", "--json"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["id"], 1);
    assert_eq!(keys[0]["name"], "ci");
    assert_eq!(keys[0]["prefix"], &k1[..12]);
    assert_eq!(keys[0]["admin"], false);
    assert_eq!(keys[0]["rpm_limit"], Value::Null);
    assert_eq!(keys[0]["status"], "active");
    assert_eq!(keys[0]["expires_at"], Value::Null);
    assert_eq!(keys[0]["revoked_at"], Value::Null);
    assert_eq!(keys[0]["last_used_at"], Value::Null);
    assert_eq!(keys[1]["admin"], true);
    assert_eq!(keys[1]["rpm_limit"], 60);
    assert_eq!(keys[1]["expires_at"], "2099-01-31T00:00:00Z");
    let table = t.ok(&["keys", "list"]);
    let row = table.lines().find(|l| l.contains("ops")).unwrap();
    let cells = cells(row);
    assert_eq!(cells.len(), 9);
    let prefix = format!("{}…", keys[1]["prefix"].as_str().unwrap());
    assert_eq!(cells[..5], ["2", "ops", prefix.as_str(), "yes", "60"]);
    assert_eq!(cells[6..], ["never", "2099-01-31 00:00 UTC", "active"]);
    assert!(!table.contains(k1.trim_end()));

    // Names are unique among live keys.
    let out = t.run(&["keys", "create", "--name", "ci"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: cannot create key: a live key named \"ci\" already exists (revoke it first or pick another name)\n"
    );
    assert_eq!(stdout(&out), "");
    let out = t.run(&["keys", "create", "--name", "old", "--expires", "2001-01-01"]);
    assert_eq!(
        stderr(&out),
        "amq2api: invalid --expires: \"2001-01-01\" is in the past\n"
    );
    let out = t.run(&["keys", "create", "--name", "old", "--rpm", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn revoke_by_name_prefix_or_id() {
    let t = TestDir::new();
    let key = t.ok(&["keys", "create", "--name", "ci"]);
    let key = key.trim_end();
    let pool = t.pool();
    let hash = amq2api::db::api_keys::HashedKey::of(key);
    // Without a terminal and without --yes: refused, nothing changes.
    let out = t.run(&["keys", "revoke", "ci"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: cannot revoke key: refusing to ask for confirmation without a terminal: pass --yes\n"
    );
    assert_eq!(
        t.ok(&["keys", "revoke", &key[..12], "--yes"]),
        "Revoked key 1 (ci)\n"
    );
    assert!(
        amq2api::db::api_keys::find_live(&mut pool.get().unwrap(), &hash, amq2api::db::now())
            .unwrap()
            .is_none()
    );
    let keys = t.json(&["keys", "list", "--json"]);
    assert_eq!(keys[0]["status"], "revoked");
    assert!(keys[0]["revoked_at"].is_string());
    let out = t.run(&["keys", "revoke", "1", "--yes"]);
    assert_eq!(
        stderr(&out),
        "amq2api: cannot revoke key: key 1 (ci) is already revoked\n"
    );
    // The name is free again.
    t.ok(&["keys", "create", "--name", "ci"]);
    assert_eq!(
        t.ok(&["keys", "revoke", "ci", "-y"]),
        "Revoked key 2 (ci)\n"
    );
    let out = t.run(&["keys", "revoke", "nothing-like-it", "--yes"]);
    assert_eq!(
        stderr(&out),
        "amq2api: cannot revoke key: no key with id, name or prefix \"nothing-like-it\"\n"
    );
}

#[test]
fn empty_lists_say_how_to_fill_them() {
    let t = TestDir::new();
    assert_eq!(
        t.ok(&["keys", "list"]),
        "No keys. Create one with: amq2api keys create --name NAME\n"
    );
    assert_eq!(t.ok(&["keys", "list", "--json"]), "[]\n");
    assert_eq!(
        t.ok(&["accounts", "list"]),
        "No accounts. Add some with: amq2api accounts import FILE\n"
    );
    assert_eq!(t.ok(&["accounts", "list", "--json"]), "[]\n");
}
