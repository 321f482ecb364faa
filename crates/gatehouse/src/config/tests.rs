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

/// `GOOD` with webhooks; `PATH` stands in for a secret variable that is set.
fn with_webhooks(hooks: &str) -> String {
    format!("{GOOD}[approvals]\nconsole_url = \"https://gh.example.com\"\n{hooks}")
}

#[test]
fn webhooks_parse_with_defaults() {
    let text = with_webhooks(
        r#"
[[approvals.webhooks]]
name = "dba-slack"
url = "https://hooks.slack.com/services/T0/B0/xyz"
groups = ["dba"]
format = "slack"
secret_env = "PATH"
max_attempts = 3
[[approvals.webhooks]]
name = "all"
url = "http://10.0.0.5:8080/gatehouse"
secret_env = "PATH"
"#,
    );
    let c = Config::parse(&text, Path::new("."), Secrets::Required).unwrap();
    assert_eq!(c.webhooks.len(), 2);
    let (slack, all) = (&c.webhooks[0], &c.webhooks[1]);
    assert_eq!(slack.name, "dba-slack");
    assert_eq!(slack.format, webhooks::Format::Slack);
    assert_eq!(slack.groups, ["dba"]);
    assert_eq!(slack.max_attempts, 3);
    assert_eq!(
        slack.secret.as_bytes(),
        std::env::var("PATH").unwrap().as_bytes()
    );
    assert_eq!(all.format, webhooks::Format::Json);
    assert!(all.groups.is_empty());
    assert_eq!(all.max_attempts, webhooks::Webhook::DEFAULT_MAX_ATTEMPTS);
    // The secret never shows in the config's Debug.
    let shown = format!("{c:?}");
    assert!(!shown.contains("xyz") && !shown.contains(&std::env::var("PATH").unwrap()));
    assert!(Config::parse(GOOD, Path::new("."), Secrets::Required)
        .unwrap()
        .webhooks
        .is_empty());
}

#[test]
fn webhook_keys_are_checked_like_every_table() {
    let text = with_webhooks(
        r#"
[[approvals.webhooks]]
name = "a"
url = "https://x.example.com/"
secret_env = "PATH"
retries = 3
[[approvals.webhooks]]
url = "https://x.example.com/"
"#,
    );
    let all = Config::parse(&text, Path::new("."), Secrets::Required)
        .unwrap_err()
        .join("\n");
    for needle in [
        "approvals.webhooks[0].retries: unknown key",
        "approvals.webhooks[1].name: missing",
        "approvals.webhooks[1].secret_env: missing",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    let all = Config::parse(
        &format!("{GOOD}[approvals]\nwebhooks = 3\n"),
        Path::new("."),
        Secrets::Required,
    )
    .unwrap_err()
    .join("\n");
    assert!(
        all.contains("approvals.webhooks: must be an array of tables"),
        "{all}"
    );
}

#[test]
fn webhook_values_are_checked_at_once() {
    let text = with_webhooks(
        r#"
[[approvals.webhooks]]
name = "a"
url = "ftp://files.example.com/secret-path"
format = "teams"
secret_env = "GATEHOUSE_TEST_SURELY_UNSET_WEBHOOK_SECRET"
max_attempts = 0
[[approvals.webhooks]]
name = "a"
url = "not a url"
secret_env = "PATH"
max_attempts = 21
"#,
    );
    let all = Config::parse(&text, Path::new("."), Secrets::Required)
        .unwrap_err()
        .join("\n");
    for needle in [
        "approvals.webhooks[0].url: must be an http:// or https:// URL",
        "approvals.webhooks[0].format: \"teams\" is not one of",
        "approvals.webhooks[0].secret_env: environment variable GATEHOUSE_TEST_SURELY_UNSET_WEBHOOK_SECRET is not set",
        "approvals.webhooks[0].max_attempts: must be 1 to 20, got 0",
        "approvals.webhooks[1].name: duplicate webhook",
        "approvals.webhooks[1].url: not a URL",
        "approvals.webhooks[1].max_attempts: must be 1 to 20, got 21",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    // URLs can hold secrets: errors name the key, never the value.
    assert!(!all.contains("secret-path"), "{all}");
    // Admin commands do not need the secret.
    let text = with_webhooks(
        r#"
[[approvals.webhooks]]
name = "a"
url = "https://x.example.com/"
secret_env = "GATEHOUSE_TEST_SURELY_UNSET_WEBHOOK_SECRET"
"#,
    );
    assert!(Config::parse(&text, Path::new("."), Secrets::Optional).is_ok());
    assert!(Config::parse(&text, Path::new("."), Secrets::Required).is_err());
}

#[test]
fn session_threads_default_and_bounds() {
    let c = Config::parse(GOOD, Path::new("."), Secrets::Required).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(c.session_threads, (cpus / 2).max(1));
    let set = format!("{GOOD}[limits]\nsession_threads = 3\n");
    let c = Config::parse(&set, Path::new("."), Secrets::Required).unwrap();
    assert_eq!(c.session_threads, 3);
    for (v, needle) in [("0", "must be positive"), ("5000", "at most 1024")] {
        let bad = format!("{GOOD}[limits]\nsession_threads = {v}\n");
        let all = Config::parse(&bad, Path::new("."), Secrets::Required)
            .unwrap_err()
            .join("\n");
        assert!(
            all.contains("limits.session_threads") && all.contains(needle),
            "{v}: {all}"
        );
    }
}

#[test]
fn identity_providers_parse_with_defaults() {
    let text = format!(
        "{GOOD}\n[[identity_providers]]\nname = \"okta\"\nissuer = \"https://example.okta.com\"\nclient_id = \"abc\"\ngroup_map = {{ \"Database Admins\" = \"dba\" }}\n"
    );
    let c = Config::parse(&text, Path::new("."), Secrets::Required).unwrap();
    let p = &c.proxy.identity_providers[0];
    assert!(
        p.audience.is_empty(),
        "no JWT passwords unless an audience is set"
    );
    assert_eq!(p.client_id.as_deref(), Some("abc"));
    assert_eq!(p.identity_claim, "sub");
    assert_eq!(p.groups_claim, "groups");
    assert_eq!(p.kind, model::IdentityKind::Agent);
    assert_eq!(p.max_credential_ttl_secs, 8 * 3600);
    assert_eq!(p.clock_skew_secs, 60);
    assert_eq!(p.recheck_secs, 300);
    assert_eq!(p.group_map["Database Admins"], "dba");
}

#[test]
fn identity_provider_errors_name_their_keys() {
    let text = format!(
        r#"{GOOD}
[[identity_providers]]
name = "a"
issuer = "http://idp.example.com"
algorithms = ["HS256", "none"]
kind = "robot"
clock_skew_secs = 900
max_credential_ttl = "30d"
client_secret_env = "GATEHOUSE_TEST_SURELY_UNSET_OIDC_SECRET"
[[identity_providers]]
name = "a"
issuer = "http://127.0.0.1:9/x"
client_id = "c"
client_secret_env = "GATEHOUSE_TEST_SURELY_UNSET_OIDC_SECRET"
group_map = {{ "x" = "not a group" }}
recheck_secs = 90000
"#
    );
    let all = Config::parse(&text, Path::new("."), Secrets::Required)
        .unwrap_err()
        .join("\n");
    for needle in [
        "identity_providers[0].issuer: http://idp.example.com must use https://",
        "identity_providers[0].audience: missing (JWTs as passwords need it; logins need client_id)",
        "identity_providers[0].client_secret_env: needs client_id",
        "identity_providers[0].kind: unknown identity kind",
        "identity_providers[0].algorithms: \"HS256\" is not allowed",
        "identity_providers[0].algorithms: \"none\" is not allowed",
        "identity_providers[0].clock_skew_secs: must be 0 to 300",
        "identity_providers[0].max_credential_ttl: at most 7d",
        "identity_providers[1].name: duplicate provider",
        "identity_providers[1].client_secret_env: environment variable GATEHOUSE_TEST_SURELY_UNSET_OIDC_SECRET is not set",
        "identity_providers[1].recheck_secs: must be 0 (never) to 86400, got 90000",
        "identity_providers[1].group_map.\"x\": \"not a group\" is not a valid Gatehouse group name",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    let text = format!("{GOOD}\n[[identity_providers]]\nname = \"a\"\ncolour = \"blue\"\n");
    let all = Config::parse(&text, Path::new("."), Secrets::Required)
        .unwrap_err()
        .join("\n");
    assert!(
        all.contains("identity_providers[0].colour: unknown key"),
        "{all}"
    );
    assert!(
        all.contains("identity_providers[0].issuer: missing"),
        "{all}"
    );
}
