//! Decides at build time whether the browser test can run: it needs
//! `chromedriver` and Chromium (Debian's `chromium-driver` and `chromium`).
//! Without them (and without `KEYWARD_REQUIRE_BROWSER=1`) it sets
//! `cfg(keyward_no_browser)`, under which the test is reported as ignored
//! rather than passed. CI sets `KEYWARD_REQUIRE_BROWSER=1` after installing
//! both, so there a missing browser fails the test.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(keyward_no_browser)");
    println!("cargo::rerun-if-env-changed=KEYWARD_REQUIRE_BROWSER");
    println!("cargo::rerun-if-env-changed=CHROMEDRIVER");
    println!("cargo::rerun-if-changed=build.rs");
    let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let present = Path::new(&driver).exists() && Path::new("/usr/bin/chromium").exists();
    let required = std::env::var("KEYWARD_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    if !present && !required {
        println!("cargo::rustc-cfg=keyward_no_browser");
    }
}
