//! Loading: errors name the file and line; ids are stable and unique; templates refused.

use policy::{Policies, PolicyError};

fn load(name: &str, text: &str) -> Result<Policies, Vec<PolicyError>> {
    Policies::load(true, &[(name.to_owned(), text.to_owned())])
}

#[test]
fn the_builtin_pack_validates() {
    let p = Policies::load(true, &[]).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(p.len() > 15);
}

#[test]
fn syntax_errors_report_file_and_line() {
    let text = "permit (principal, action, resource);\n\n// next one is broken\nforbid (principal, action resource);\n";
    let errs = load("team.cedar", text).err().unwrap_or_default();
    assert!(!errs.is_empty());
    let e = &errs[0];
    assert_eq!(e.file, "team.cedar");
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.to_string().starts_with("team.cedar:4:"), "{e}");
}

#[test]
fn validation_errors_report_file_and_line() {
    let text = "@id(\"ok\")\npermit (principal, action, resource);\n@id(\"bad\")\nforbid (principal, action, resource)\nwhen { context.no_such_fact };\n";
    let errs = load("v.cedar", text).err().unwrap_or_default();
    assert!(
        !errs.is_empty(),
        "strict validation must reject unknown attributes"
    );
    assert!(errs.iter().all(|e| e.file == "v.cedar"), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.line == Some(5) || e.line == Some(4)),
        "{errs:?}"
    );
    // Unknown entity types and actions too.
    let errs = load(
        "w.cedar",
        "permit (principal, action == Gatehouse::Action::\"nuke\", resource);",
    )
    .err();
    assert!(errs.is_some());
}

#[test]
fn every_error_is_reported() {
    let a = (
        "a.cedar".to_owned(),
        "permit (principal action, resource);".to_owned(),
    );
    let b = (
        "b.cedar".to_owned(),
        "forbid (principal, action, resource) when { 1 };".to_owned(),
    );
    let errs = Policies::load(false, &[a, b]).err().unwrap_or_default();
    let files: Vec<&str> = errs.iter().map(|e| e.file.as_str()).collect();
    assert!(
        files.contains(&"a.cedar") && files.contains(&"b.cedar"),
        "{errs:?}"
    );
}

#[test]
fn ids_must_be_unique_and_approval_well_formed() {
    let dup = "@id(\"x\")\npermit (principal, action, resource);\n@id(\"x\")\npermit (principal, action, resource);";
    let errs = load("d.cedar", dup).err().unwrap_or_default();
    assert!(
        errs.iter()
            .any(|e| e.message.contains("duplicate") && e.line == Some(3)),
        "{errs:?}"
    );
    let clash = "@id(\"builtin.no-drop\")\npermit (principal, action, resource);";
    assert!(load("c.cedar", clash).is_err());
    let bad = "@approval(\"dba\")\npermit (principal, action, resource);";
    assert!(load("p.cedar", bad).is_err());
    let tmpl = "permit (principal == ?principal, action, resource);";
    assert!(load("t.cedar", tmpl).is_err());
}

#[test]
fn policies_without_id_get_file_based_ids() {
    use model::decision::Decision;
    use model::facts::{CommandClass, StatementFacts};
    let p = Policies::load(
        false,
        &[(
            "mine.cedar".into(),
            "permit (principal, action, resource);".into(),
        )],
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let principal = policy::Principal {
        identity: model::Identity {
            name: "a".into(),
            kind: model::IdentityKind::Human,
            groups: vec![],
        },
    };
    let facts = StatementFacts {
        class: CommandClass::Read,
        ..StatementFacts::default()
    };
    let d = policy::decide(&p, &principal, &facts, &policy::RequestContext::default());
    assert_eq!(
        d,
        Decision::Allow {
            policies: vec!["mine.cedar#1".into()]
        }
    );
}
