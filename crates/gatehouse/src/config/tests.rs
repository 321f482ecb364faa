use super::*;
use proxy::UpstreamTls;

const GOOD: &str = r#"
data_dir = "state"
[listen]
postgres = "127.0.0.1:7432"
[[targets]]
name = "app"
upstream = "postgresql://owner@db.internal:5433/appdb?sslmode=require"
environment = "production"
"#;

#[test]
fn good_config() {
    let c = Config::parse(GOOD, Path::new("/etc/gh"), Secrets::Required).unwrap();
    assert_eq!(c.data_dir, Path::new("/etc/gh/state"));
    assert_eq!(c.listen_postgres.port(), 7432);
    let t = &c.proxy.targets["app"];
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.user.as_str(),
            t.database.as_str()
        ),
        ("db.internal", 5433, "owner", "appdb")
    );
    assert!(matches!(t.tls, UpstreamTls::Require));
    assert_eq!(c.proxy.on_audit_failure, AuditFailureMode::Block);
}

#[test]
fn every_error_at_once_with_key_paths() {
    let bad = r#"
colour = "blue"
[listen]
postgress = "x"
[audit]
on_failure = "maybe"
[[targets]]
name = "app"
upstream = "mysql://x@y/z"
extra = 1
[[targets]]
upstream = "postgresql://a@b/c"
"#;
    let errors = Config::parse(bad, Path::new("."), Secrets::Required).unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "colour: unknown key",
        "listen.postgress: unknown key",
        "targets[0].extra: unknown key",
        "targets[1].name: missing",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
}

#[test]
fn semantic_errors_at_once() {
    let bad = r#"
[audit]
on_failure = "maybe"
[[targets]]
name = "app"
upstream = "mysql://x@y/z"
password_env = "GATEHOUSE_TEST_SURELY_UNSET_VAR"
"#;
    let all = Config::parse(bad, Path::new("."), Secrets::Required)
        .unwrap_err()
        .join("\n");
    for needle in [
        "audit.on_failure",
        "targets[0].upstream: scheme",
        "targets[0].password_env",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
}
