//! The `usage_log` table: one row per proxied request, written when the request ends.

use diesel::prelude::*;

use super::schema::usage_log;

#[derive(Queryable, Selectable, Identifiable, Debug, Clone, PartialEq)]
#[diesel(table_name = usage_log)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub struct UsageRecord {
    pub id: i32,
    pub created_at: i64,
    pub api_key_id: Option<i32>,
    pub account_id: Option<i32>,
    pub account_name: Option<String>,
    pub endpoint: String,
    pub model_requested: String,
    pub model_upstream: Option<String>,
    pub stream: bool,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub status: i32,
    pub error_class: Option<String>,
    pub ttfb_ms: Option<i64>,
    pub latency_ms: i64,
}

#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = usage_log)]
pub struct NewUsageRecord {
    pub created_at: i64,
    pub api_key_id: Option<i32>,
    pub account_id: Option<i32>,
    pub account_name: Option<String>,
    pub endpoint: String,
    pub model_requested: String,
    pub model_upstream: Option<String>,
    pub stream: bool,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub status: i32,
    pub error_class: Option<String>,
    pub ttfb_ms: Option<i64>,
    pub latency_ms: i64,
}

pub fn insert(conn: &mut SqliteConnection, record: &NewUsageRecord) -> QueryResult<usize> {
    diesel::insert_into(usage_log::table)
        .values(record)
        .execute(conn)
}

pub fn list_since(conn: &mut SqliteConnection, since: i64) -> QueryResult<Vec<UsageRecord>> {
    usage_log::table
        .filter(usage_log::created_at.ge(since))
        .order(usage_log::id.asc())
        .select(UsageRecord::as_select())
        .load(conn)
}
