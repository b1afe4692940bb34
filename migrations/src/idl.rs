//! The programs' IDLs: which programs, and how a committed IDL compares with a fresh build
//! (`src/bin/idl.rs` builds them).

/// (IDL name, directory under `programs/`).
pub const PROGRAMS: [(&str, &str); 5] = [
    ("registry", "registry"),
    ("oracle", "oracle"),
    ("energy_token", "energy-token"),
    ("trading", "trading"),
    ("governance", "governance"),
];

#[derive(Debug, PartialEq, Eq)]
pub enum Comparison {
    Current,
    Missing,
    /// The first line (1-based) where they differ.
    Stale {
        line: usize,
    },
}

/// Whether the committed IDL text equals the freshly built one (a trailing newline in the
/// committed file is ignored: editors add one).
pub fn compare(committed: Option<&str>, built: &str) -> Comparison {
    let Some(committed) = committed else {
        return Comparison::Missing;
    };
    let committed = committed.strip_suffix('\n').unwrap_or(committed);
    if committed == built {
        return Comparison::Current;
    }
    let line = committed
        .lines()
        .zip(built.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(built.lines().count()))
        + 1;
    Comparison::Stale { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILT: &str = "{\n  \"address\": \"X\",\n  \"instructions\": []\n}";

    #[test]
    fn a_current_idl_passes_and_a_trailing_newline_is_ignored() {
        assert_eq!(compare(Some(BUILT), BUILT), Comparison::Current);
        assert_eq!(
            compare(Some(&format!("{BUILT}\n")), BUILT),
            Comparison::Current
        );
    }

    #[test]
    fn a_stale_or_missing_idl_fails() {
        let stale = BUILT.replace("[]", "[{\"name\": \"gone\"}]");
        assert_eq!(compare(Some(&stale), BUILT), Comparison::Stale { line: 3 });
        assert_eq!(compare(None, BUILT), Comparison::Missing);
        // A truncated file differs where it ends.
        assert_eq!(
            compare(Some("{\n  \"address\": \"X\","), BUILT),
            Comparison::Stale { line: 3 }
        );
    }

    /// The committed IDLs are the ones the build produces: checked by `.ci/run` (the `idl
    /// --check` step). Here: each exists and names its program.
    #[test]
    fn every_program_has_a_committed_idl() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (name, _) in PROGRAMS {
            let text = std::fs::read_to_string(root.join("idl").join(format!("{name}.json")))
                .unwrap_or_else(|e| panic!("idl/{name}.json: {e}"));
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["metadata"]["name"], name);
            assert!(!json["instructions"].as_array().unwrap().is_empty());
        }
    }
}
