//! Black-box tests of `amq2api accounts ...` on a temporary database: every import format,
//! re-import, malformed files, --skip-invalid, list output, add, enable/disable, remove.

use serde_json::Value;

use crate::support::{cells, fixture, stderr, stdout, TestDir, FIXTURE_SECRETS};

fn import(t: &TestDir, files: &[&str]) -> String {
    let mut args = vec!["accounts", "import"];
    let paths: Vec<String> = files
        .iter()
        .map(|f| fixture(f).display().to_string())
        .collect();
    args.extend(paths.iter().map(String::as_str));
    t.ok(&args)
}

fn accounts(t: &TestDir) -> Vec<Value> {
    t.json(&["accounts", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn imports_every_format_and_lists_them_field_by_field() {
    let t = TestDir::new();
    assert_eq!(
        import(&t, &["accounts/single.json"]),
        "1 added, 0 updated, 0 skipped\n"
    );
    assert_eq!(
        import(&t, &["accounts/array.json"]),
        "2 added, 0 updated, 0 skipped\n"
    );
    assert_eq!(
        import(&t, &["accounts/wrapped.json"]),
        "1 added, 0 updated, 0 skipped\n"
    );
    assert_eq!(
        import(&t, &["accounts/botocore-sso-cache.json"]),
        "1 added, 0 updated, 0 skipped\n"
    );
    // Kiro's token file with its client-registration file given alongside.
    assert_eq!(
        import(
            &t,
            &[
                "accounts/kiro/kiro-auth-token.json",
                "accounts/kiro/e909a0580879b06ece1202964fbe9dda95ea4ce3.json"
            ]
        ),
        "1 added, 0 updated, 0 skipped\n"
    );
    assert_eq!(
        import(&t, &["accounts/kiro-social.json"]),
        "1 added, 0 updated, 0 skipped\n"
    );
    // The Amazon Q CLI store's token and device registration (snake_case).
    assert_eq!(
        import(
            &t,
            &[
                "accounts/qcli/token.json",
                "accounts/qcli/device-registration.json"
            ]
        ),
        "1 added, 0 updated, 0 skipped\n"
    );
    assert_eq!(
        import(&t, &["accounts/kam-export.json"]),
        "1 added, 0 updated, 0 skipped\n"
    );

    let list = accounts(&t);
    assert_eq!(list.len(), 9);
    let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "Single-Account");
    assert!(
        names[1].starts_with("builder-id-") && names[1].len() == "builder-id-".len() + 8,
        "{names:?}"
    );
    assert_eq!(names[3], "team-a");
    assert!(names[6].starts_with("github-"), "{names:?}");
    assert_eq!(names[8], "dev@example.com");
    let names_set: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(names_set.len(), 9, "names are unique");

    let a = &list[0];
    assert_eq!(a["id"], 1);
    assert_eq!(a["kind"], "idc");
    assert_eq!(a["region"], "us-east-1");
    assert_eq!(a["enabled"], true);
    assert_eq!(a["health"], "active");
    assert_eq!(a["health_until"], Value::Null);
    assert_eq!(a["health_reason"], Value::Null);
    assert_eq!(a["access_token_expires_at"], Value::Null);
    assert_eq!(a["access_token_valid"], false);
    assert_eq!(a["last_used_at"], Value::Null);
    assert_eq!(a["profile_arn"], Value::Null);
    assert!(a["created_at"].as_str().unwrap().ends_with('Z'));

    // array.json: an access token valid until 2099, and a snake_case entry with its profile.
    assert_eq!(list[1]["access_token_expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(list[1]["access_token_valid"], true);
    assert_eq!(list[2]["region"], "eu-central-1");
    assert_eq!(
        list[2]["profile_arn"],
        "arn:aws:codewhisperer:eu-central-1:123456789012:profile/FAKEPROFILE"
    );
    // botocore: an expired access token.
    assert_eq!(list[4]["access_token_expires_at"], "2020-03-01T12:00:00Z");
    assert_eq!(list[4]["access_token_valid"], false);
    // Kiro social.
    assert_eq!(list[6]["kind"], "social");
    assert_eq!(
        list[6]["profile_arn"],
        "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKESOCIAL"
    );

    // The Kiro client registration was stored with the token (checked in the database).
    let pool = t.pool();
    let rows = amq2api::db::accounts::list(&mut pool.get().unwrap()).unwrap();
    assert_eq!(rows[5].client_id.as_deref(), Some("FAKECLIENTkiro0001"));
    assert_eq!(
        rows[5].client_secret.as_deref(),
        Some("eyJFAKE-kiro-client-secret-0001")
    );
    assert_eq!(rows[7].client_id.as_deref(), Some("FAKECLIENTqcli0001"));
    assert_eq!(
        rows[8].start_url.as_deref(),
        Some("https://view.awsapps.com/start")
    );

    // The table has a row per account and no secret.
    let table = t.ok(&["accounts", "list"]);
    let header = table.lines().nth(1).unwrap();
    for col in [
        "ID",
        "Name",
        "Kind",
        "Region",
        "Enabled",
        "Health",
        "Token expires",
        "Last used",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = table
        .lines()
        .find(|l| l.contains("Single-Account"))
        .unwrap();
    let cells = cells(row);
    assert_eq!(
        cells,
        [
            "1",
            "Single-Account",
            "idc",
            "us-east-1",
            "yes",
            "active",
            "-",
            "never"
        ]
    );
    let row = table
        .lines()
        .find(|l| l.contains("botocore") || l.contains("│ 5 "))
        .unwrap();
    assert!(row.contains("expired"), "{row}");
    for secret in FIXTURE_SECRETS {
        assert!(!table.contains(secret));
        assert!(!t.ok(&["accounts", "list", "--json"]).contains(secret));
    }
}

#[test]
fn stdin_and_kiro_sibling_lookup() {
    let t = TestDir::new();
    let text = std::fs::read_to_string(fixture("accounts/single.json")).unwrap();
    let out = t
        .cmd()
        .args(["accounts", "import", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 added, 0 updated, 0 skipped\n");
    // Only the Kiro token file is given: its registration is found next to it.
    assert_eq!(
        import(&t, &["accounts/kiro/kiro-auth-token.json"]),
        "1 added, 0 updated, 0 skipped\n"
    );
}

#[test]
fn reimport_updates_instead_of_duplicating() {
    let t = TestDir::new();
    import(&t, &["accounts/array.json"]);
    assert_eq!(
        import(&t, &["accounts/array.json"]),
        "0 added, 2 updated, 0 skipped\n"
    );
    assert_eq!(accounts(&t).len(), 2);
    // A disabled account is enabled again by re-importing it? No: enabled is the operator's
    // switch; health is reset. Disable, re-import, still disabled but healthy.
    t.ok(&["accounts", "disable", "1"]);
    import(&t, &["accounts/array.json"]);
    assert_eq!(accounts(&t)[0]["enabled"], false);
    // --name renames the account the token belongs to.
    let out = t.ok(&[
        "accounts",
        "import",
        "--name",
        "renamed",
        fixture("accounts/single.json").to_str().unwrap(),
    ]);
    assert_eq!(out, "1 added, 0 updated, 0 skipped\n");
    let out = t.ok(&[
        "accounts",
        "import",
        "--name",
        "again",
        fixture("accounts/single.json").to_str().unwrap(),
    ]);
    assert_eq!(out, "0 added, 1 updated, 0 skipped\n");
    assert_eq!(accounts(&t)[2]["name"], "again");
}

#[test]
fn malformed_file_fails_with_exact_message_and_writes_nothing() {
    let t = TestDir::new();
    let bad = fixture("accounts/malformed.json");
    let good = fixture("accounts/single.json");
    let out = t.run(&[
        "accounts",
        "import",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "amq2api: cannot import accounts: {}: entry 2 of 3: missing field \"clientSecret\"\n",
            bad.display()
        )
    );
    assert_eq!(stdout(&out), "");
    assert_eq!(accounts(&t).len(), 0, "nothing from that run is written");

    // Not JSON at all.
    let junk = t.path().join("junk.json");
    std::fs::write(&junk, "{\"refreshToken\": \"aorFAKE-x\",").unwrap();
    let out = t.run(&["accounts", "import", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "amq2api: cannot import accounts: {}: entry 1 of 1: not valid JSON (EOF while parsing a value at line 1 column 29)\n",
            junk.display()
        )
    );
    // A missing file.
    let out = t.run(&["accounts", "import", "nope.json"]);
    assert_eq!(
        stderr(&out),
        "amq2api: cannot import accounts: cannot read nope.json: No such file or directory (os error 2)\n"
    );
    assert_eq!(accounts(&t).len(), 0);
}

#[test]
fn skip_invalid_imports_the_rest_and_reports_each_skip() {
    let t = TestDir::new();
    let bad = fixture("accounts/malformed.json");
    let out = t.run(&[
        "accounts",
        "import",
        "--skip-invalid",
        bad.to_str().unwrap(),
        "missing.json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2 added, 0 updated, 2 skipped\n");
    assert_eq!(
        stderr(&out),
        format!(
            "skipped missing.json: No such file or directory (os error 2)\nskipped {}: entry 2 of 3: missing field \"clientSecret\"\n",
            bad.display()
        )
    );
    assert_eq!(accounts(&t).len(), 2);
}

#[test]
fn add_enable_disable_remove() {
    let t = TestDir::new();
    // Without a terminal every value must come from a flag.
    let out = t.run(&["accounts", "add", "--name", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: missing --client-id (no terminal to ask on)\n"
    );
    let out = t.ok(&[
        "accounts",
        "add",
        "--name",
        "manual",
        "--client-id",
        "FAKECLIENTadd",
        "--client-secret",
        "eyJFAKE-add-secret",
        "--refresh-token",
        "aorFAKE-add-refresh",
        "--region",
        "eu-central-1",
        "--rpm",
        "5",
    ]);
    assert_eq!(out, "Added account 1 (manual)\n");
    let out = t.run(&[
        "accounts",
        "add",
        "--name",
        "manual",
        "--kind",
        "social",
        "--refresh-token",
        "aorFAKE-other",
    ]);
    assert_eq!(
        stderr(&out),
        "amq2api: cannot add account: an account named \"manual\" already exists\n"
    );
    let out = t.run(&[
        "accounts",
        "add",
        "--name",
        "bad",
        "--kind",
        "social",
        "--refresh-token",
        "aorFAKE-o",
        "--region",
        "x",
    ]);
    assert_eq!(
        stderr(&out),
        "amq2api: cannot add account: \"region\" is not an AWS region (like us-east-1)\n"
    );
    let a = &accounts(&t)[0];
    assert_eq!(a["rpm_limit"], 5);
    assert_eq!(a["region"], "eu-central-1");

    assert_eq!(
        t.ok(&["accounts", "disable", "manual"]),
        "Disabled account 1 (manual)\n"
    );
    assert_eq!(accounts(&t)[0]["enabled"], false);
    assert_eq!(
        t.ok(&["accounts", "enable", "1"]),
        "Enabled account 1 (manual)\n"
    );
    assert_eq!(accounts(&t)[0]["enabled"], true);
    let out = t.run(&["accounts", "enable", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: cannot enable account: no account with id or name \"ghost\"\n"
    );

    // A usage row that must survive the removal.
    let pool = t.pool();
    amq2api::db::usage::insert(
        &mut pool.get().unwrap(),
        &amq2api::db::usage::NewUsageRecord {
            created_at: 1,
            api_key_id: None,
            account_id: Some(1),
            account_name: Some("manual".into()),
            endpoint: "/v1/messages".into(),
            model_requested: "claude-sonnet-4-5".into(),
            model_upstream: Some("claude-sonnet-4.5".into()),
            stream: true,
            input_tokens: 10,
            output_tokens: 20,
            status: 200,
            error_class: None,
            ttfb_ms: Some(5),
            latency_ms: 9,
        },
    )
    .unwrap();

    // Without a terminal and without --yes, remove refuses.
    let out = t.run(&["accounts", "remove", "manual"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "amq2api: cannot remove account: refusing to ask for confirmation without a terminal: pass --yes\n"
    );
    assert_eq!(accounts(&t).len(), 1);
    assert_eq!(
        t.ok(&["accounts", "remove", "manual", "--yes"]),
        "Removed account 1 (manual)\n"
    );
    assert_eq!(accounts(&t).len(), 0);
    let rows = amq2api::db::usage::list_since(&mut pool.get().unwrap(), 0).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].account_id, None);
    assert_eq!(rows[0].account_name.as_deref(), Some("manual"));
}
