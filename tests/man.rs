//! The man page is generated from the clap definitions; the committed copy
//! must match what the binary prints.

use crate::test::Env;

#[test]
fn the_committed_man_page_is_current() {
    let env = Env::new();
    let fresh = env.ok(&["man"]);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/hcc.1"))
        .unwrap_or_default();
    assert!(
        fresh == committed,
        "man/hcc.1 is stale: run `cargo run -- man > man/hcc.1` and commit it"
    );
    for section in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "hcc push",
        "hcc next",
    ] {
        assert!(fresh.contains(section), "man page lacks {section}");
    }
}

#[test]
fn completions_cover_the_subcommands() {
    let env = Env::new();
    let bash = env.ok(&["completions", "bash"]);
    for word in ["push", "pull", "next", "wait", "ingest", "--home"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(env.ok(&["completions", "zsh"]).contains("#compdef hcc"));
}
