//! What the binaries were built from: `--version` of both binaries and `cellnet_build_info`.

/// The crate's version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit (12 hex digits) the build came from, set by build.rs: `$CELLNET_GIT_COMMIT`,
/// else `git rev-parse`, else `unknown` (a source tarball without `.git`).
pub const GIT_COMMIT: &str = env!("CELLNET_GIT_COMMIT");

/// `--version` text after the binary's name: `0.1.0 (commit 0123456789ab)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CELLNET_GIT_COMMIT"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_names_version_and_commit() {
        assert_eq!(LONG_VERSION, format!("{VERSION} (commit {GIT_COMMIT})"));
        assert!(!GIT_COMMIT.is_empty());
    }
}
