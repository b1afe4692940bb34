//! The alert rules (monitoring/alerts.yml): valid for Prometheus (`promtool check rules`),
//! firing as their unit tests say (`promtool test rules`), and the example scrape
//! configuration valid (`promtool check config`). promtool comes with the
//! Debian package `prometheus`, which `.ci/run` installs; it sets
//! GRIDTOKENX_REQUIRE_PROMTOOL=1, so that CI fails rather than skips without it.
use std::path::PathBuf;
use std::process::Command;

fn monitoring() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("monitoring")
}

/// promtool, if installed (required under GRIDTOKENX_REQUIRE_PROMTOOL).
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("GRIDTOKENX_REQUIRE_PROMTOOL").is_none(),
            "promtool not found: apt-get install prometheus"
        );
        eprintln!("skipped: promtool not found (apt-get install prometheus)");
        return None;
    }
    Some("promtool")
}

/// Runs `promtool args` in monitoring/; its output, once it succeeded.
fn promtool_ok(promtool: &str, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(monitoring())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

#[test]
fn alert_rules_are_valid_and_fire_as_their_tests_say() {
    let Some(promtool) = promtool() else { return };
    let out = promtool_ok(promtool, &["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS: 22 rules found"), "{out}");
    promtool_ok(promtool, &["check", "config", "prometheus.example.yml"]);
    let out = promtool_ok(promtool, &["test", "rules", "alerts.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alert the README's "Operating" section promises is in the rules, and each has its
/// own paragraph there.
#[test]
fn every_alert_is_explained_in_the_readme() {
    let rules = std::fs::read_to_string(monitoring().join("alerts.yml")).unwrap();
    let readme = std::fs::read_to_string(monitoring().join("..").join("README.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 22);
    for alert in alerts {
        assert!(
            readme.contains(&format!("`{alert}`")),
            "README \"Operating\" does not explain {alert}"
        );
    }
}
