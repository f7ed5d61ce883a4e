//! The facade's root stays small: the host's vocabulary and the modules
//! that namespace the rest, at most 40 names (the `docs` notes and the
//! feature-gated `testkit` aside). Counted from the facade's source, so a
//! new root export has to be weighed here.

#[test]
fn the_root_holds_at_most_40_names() {
    let source = include_str!("../src/lib.rs");
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("\npub use keyward_core::{") {
        let block = &rest[start + "\npub use keyward_core::{".len()..];
        let end = block.find("};").expect("a closed use block");
        names.extend(
            block[..end]
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
        );
        rest = &block[end..];
    }
    for line in source.lines() {
        if let Some(module) = line.strip_prefix("pub mod ") {
            let module = module.trim_end_matches(" {").trim_end_matches(';');
            if module != "docs" {
                names.push(module.to_owned());
            }
        }
    }
    assert!(names.contains(&"Keyward".to_owned()) && names.contains(&"store".to_owned()));
    assert!(names.len() <= 40, "{} root names: {names:?}", names.len());
}
