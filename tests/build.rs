//! Decides at build time whether the Postgres tests can run.
//!
//! Without `DATABASE_URL` (and without `KEYWARD_REQUIRE_POSTGRES=1`) it sets
//! `cfg(keyward_no_postgres)`, under which every Postgres test carries
//! `#[ignore = "…"]`: libtest's summary then counts them as *ignored* instead
//! of as passed. Cargo runs this again whenever either variable changes, so
//! `DATABASE_URL=… cargo test` rebuilds with the tests enabled.
//!
//! With `KEYWARD_REQUIRE_POSTGRES=1` the tests are never ignored, so a
//! missing `DATABASE_URL` or server fails them (CI sets it).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(keyward_no_postgres)");
    println!("cargo::rerun-if-env-changed=DATABASE_URL");
    println!("cargo::rerun-if-env-changed=KEYWARD_REQUIRE_POSTGRES");
    println!("cargo::rerun-if-changed=build.rs");
    let url_set = std::env::var_os("DATABASE_URL").is_some_and(|url| !url.is_empty());
    let required = std::env::var("KEYWARD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    if !url_set && !required {
        println!("cargo::rustc-cfg=keyward_no_postgres");
    }
}
