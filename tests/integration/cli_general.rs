//! Black-box tests of what every command shares: database creation, .env and precedence,
//! usage errors, broken pipes, concurrent writers, and no secret in any output.

use std::process::Stdio;

use crate::support::{fixture, stderr, stdout, TestDir, FIXTURE_SECRETS};

#[test]
fn database_is_created_with_its_folder_and_mode_0600() {
    let t = TestDir::new();
    let db = t.path().join("nested/deeper/x.db");
    t.cmd()
        .args(["--database", db.to_str().unwrap(), "keys", "list"])
        .assert()
        .success();
    assert!(db.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn default_database_path_is_data_amq2api_db() {
    let t = TestDir::new();
    t.cmd()
        .env_remove("DATABASE_PATH")
        .args(["keys", "list"])
        .assert()
        .success();
    assert!(t.path().join("data/amq2api.db").exists());
}

#[test]
fn flag_beats_environment_beats_dotenv() {
    let t = TestDir::new();
    std::fs::write(
        t.path().join(".env"),
        "# comment\nDATABASE_PATH=from-dotenv.db\n",
    )
    .unwrap();
    t.cmd()
        .env_remove("DATABASE_PATH")
        .args(["keys", "list"])
        .assert()
        .success();
    assert!(t.path().join("from-dotenv.db").exists());
    t.cmd()
        .env("DATABASE_PATH", "from-env.db")
        .args(["keys", "list"])
        .assert()
        .success();
    assert!(t.path().join("from-env.db").exists());
    t.cmd()
        .env("DATABASE_PATH", "from-env.db")
        .args(["--database", "from-flag.db", "keys", "list"])
        .assert()
        .success();
    assert!(t.path().join("from-flag.db").exists());
}

#[test]
fn malformed_dotenv_names_the_line_not_its_content() {
    let t = TestDir::new();
    std::fs::write(
        t.path().join(".env"),
        "A=1\n# ok\nAMAZONQ_REFRESH_TOKEN aorFAKE-in-dotenv\n",
    )
    .unwrap();
    let out = t.run(&["keys", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: cannot load .env: line 3 is malformed\n"
    );
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let t = TestDir::new();
    for args in [
        &["accounts", "frobnicate"][..],
        &["keys", "create"],
        &["--bogus"],
        &["keys", "create", "--name", "x", "--rpm", "many"],
    ] {
        let out = t.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("amq2api: invalid usage: "), "{err}");
    }
    let out = t.run(&["keys", "create"]);
    assert_eq!(
        stderr(&out),
        "amq2api: invalid usage: the following required arguments were not provided: (see amq2api --help)\n"
    );
    // Help is not an error.
    let out = t.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("accounts"));
}

#[test]
fn broken_pipe_is_not_an_error() {
    let t = TestDir::new();
    for i in 0..30 {
        t.ok(&["keys", "create", "--name", &format!("k{i}")]);
    }
    let mut child = t
        .std_cmd()
        .args(["keys", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn two_processes_writing_at_once_never_see_database_is_locked() {
    let t = TestDir::new();
    t.ok(&["keys", "list"]);
    let dir = t.path().to_owned();
    let db = t.db_path();
    let importer = {
        let (dir, db) = (dir.clone(), db.clone());
        std::thread::spawn(move || {
            for i in 0..50 {
                let file = dir.join(format!("acc{i}.json"));
                std::fs::write(
                    &file,
                    format!(r#"{{"clientId":"FAKECLIENTc{i}","clientSecret":"eyJFAKE-s{i}","refreshToken":"aorFAKE-r{i}"}}"#),
                )
                .unwrap();
                let out = assert_cmd::Command::cargo_bin("amq2api")
                    .unwrap()
                    .current_dir(&dir)
                    .env_clear()
                    .args([
                        "--database",
                        db.to_str().unwrap(),
                        "accounts",
                        "import",
                        file.to_str().unwrap(),
                    ])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "import {i}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        })
    };
    let creator = std::thread::spawn(move || {
        for i in 0..50 {
            let out = assert_cmd::Command::cargo_bin("amq2api")
                .unwrap()
                .current_dir(&dir)
                .env_clear()
                .args([
                    "--database",
                    db.to_str().unwrap(),
                    "keys",
                    "create",
                    "--name",
                    &format!("k{i}"),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "create {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    importer.join().unwrap();
    creator.join().unwrap();
    assert_eq!(
        t.json(&["accounts", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        50
    );
    assert_eq!(
        t.json(&["keys", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        50
    );
}

#[test]
fn two_processes_creating_a_fresh_database_at_once() {
    for _ in 0..5 {
        let t = TestDir::new();
        let children: Vec<_> = (0..4)
            .map(|i| {
                t.std_cmd()
                    .args(["keys", "create", "--name", &format!("k{i}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn no_fixture_secret_appears_in_any_output() {
    let t = TestDir::new();
    let mut outputs = Vec::new();
    let mut run = |args: Vec<String>| {
        let out = t.cmd().args(&args).output().unwrap();
        outputs.push(format!("{}{}", stdout(&out), stderr(&out)));
    };
    let f = |p: &str| fixture(p).display().to_string();
    for files in [
        vec![f("accounts/single.json")],
        vec![f("accounts/array.json"), f("accounts/wrapped.json")],
        vec![
            f("accounts/botocore-sso-cache.json"),
            f("accounts/kam-export.json"),
            f("accounts/kiro-social.json"),
        ],
        vec![f("accounts/kiro/kiro-auth-token.json")],
        vec![
            f("accounts/qcli/token.json"),
            f("accounts/qcli/device-registration.json"),
        ],
        vec![f("accounts/malformed.json")],
    ] {
        let mut args = vec!["-v".to_string(), "accounts".into(), "import".into()];
        args.extend(files.clone());
        run(args.clone());
        args.insert(3, "--skip-invalid".into());
        run(args);
    }
    for args in [
        &["accounts", "list"][..],
        &["accounts", "list", "--json"],
        &["-vv", "accounts", "list"],
        &["accounts", "disable", "1"],
        &["accounts", "enable", "1"],
        &["accounts", "remove", "2", "--yes"],
        &["keys", "list"],
    ] {
        run(args.iter().map(|s| s.to_string()).collect());
    }
    assert!(outputs.iter().any(|o| o.contains("Single-Account")));
    for out in &outputs {
        for secret in FIXTURE_SECRETS {
            assert!(!out.contains(secret), "secret {secret:?} in output:\n{out}");
        }
    }
}
