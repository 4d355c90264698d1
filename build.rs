//! One job: rebuild when a migration changes, because `embed_migrations!` cannot track new files.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
