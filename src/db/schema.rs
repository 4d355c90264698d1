// @generated shape: what `diesel print-schema` writes for migrations/ (diesel.toml points here).
// The test `db::tests::schema_matches_migrations` checks it against the migrated database.

diesel::table! {
    accounts (id) {
        id -> Integer,
        name -> Text,
        auth_kind -> Text,
        client_id -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        refresh_token -> Text,
        refresh_token_hash -> Text,
        imported_token_hash -> Text,
        access_token -> Nullable<Text>,
        access_token_expires_at -> Nullable<BigInt>,
        region -> Text,
        profile_arn -> Nullable<Text>,
        start_url -> Nullable<Text>,
        enabled -> Bool,
        health -> Text,
        health_until -> Nullable<BigInt>,
        health_reason -> Nullable<Text>,
        rpm_limit -> Nullable<Integer>,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        concurrency_limit -> Nullable<Integer>,
        weight -> Integer,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Integer,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        is_admin -> Bool,
        rpm_limit -> Nullable<Integer>,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        concurrency_limit -> Nullable<Integer>,
    }
}

diesel::table! {
    usage_log (id) {
        id -> Integer,
        created_at -> BigInt,
        api_key_id -> Nullable<Integer>,
        account_id -> Nullable<Integer>,
        account_name -> Nullable<Text>,
        endpoint -> Text,
        model_requested -> Text,
        model_upstream -> Nullable<Text>,
        stream -> Bool,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        status -> Integer,
        error_class -> Nullable<Text>,
        ttfb_ms -> Nullable<BigInt>,
        latency_ms -> BigInt,
    }
}

diesel::joinable!(usage_log -> accounts (account_id));
diesel::joinable!(usage_log -> api_keys (api_key_id));

diesel::allow_tables_to_appear_in_same_query!(accounts, api_keys, usage_log);
