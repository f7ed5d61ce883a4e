//! Decides at build time whether the Postgres tests of the CLI can run, as
//! the `keyward-tests` crate does: without `DATABASE_URL` (and without
//! `KEYWARD_REQUIRE_POSTGRES=1`) it sets `cfg(keyward_no_postgres)`, under
//! which every Postgres test is reported as ignored.

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
