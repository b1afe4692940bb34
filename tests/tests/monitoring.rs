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
pub fn promtool() -> Option<&'static str> {
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

#[test]
fn alert_rules_are_valid_and_fire_as_their_tests_say() {
    let Some(promtool) = promtool() else { return };
    let check = Command::new(promtool)
        .args(["check", "rules"])
        .arg(monitoring().join("alerts.yml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(out.contains("SUCCESS: 16 rules found"), "{out}");
    let config = Command::new(promtool)
        .args(["check", "config", "prometheus.example.yml"])
        .current_dir(monitoring())
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "{}{}",
        String::from_utf8_lossy(&config.stdout),
        String::from_utf8_lossy(&config.stderr)
    );
    let test = Command::new(promtool)
        .args(["test", "rules", "alerts.test.yml"])
        .current_dir(monitoring())
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
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
    assert_eq!(alerts.len(), 16);
    for alert in alerts {
        assert!(
            readme.contains(&format!("`{alert}`")),
            "README \"Operating\" does not explain {alert}"
        );
    }
}
