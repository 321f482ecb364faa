//! `gatehouse classify`: scans a target's schema (column names and a sample of values through
//! the value detectors) and prints suggested `[[sensitive]]` entries to review. It suggests;
//! it never changes the configuration.

use crate::config::Config;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// Column-name fragments that suggest sensitive data: (fragment, tags, mask).
const NAME_HINTS: &[(&str, &str, &str)] = &[
    ("email", "pii,contact", "email"),
    ("phone", "pii,contact", "partial"),
    ("mobile", "pii,contact", "partial"),
    ("ssn", "pii,government_id", "last4"),
    ("social_security", "pii,government_id", "last4"),
    ("passport", "pii,government_id", "full"),
    ("card", "pci", "last4"),
    ("pan", "pci", "last4"),
    ("iban", "financial", "partial"),
    ("account_number", "financial", "last4"),
    ("birth", "pii", "null"),
    ("dob", "pii", "null"),
    ("address", "pii,contact", "full"),
    ("password", "secret", "null"),
    ("secret", "secret", "null"),
    ("token", "secret", "null"),
    ("api_key", "secret", "null"),
];

pub fn run(config: &Path, target: &str, sample: usize) -> anyhow::Result<ExitCode> {
    let c = Config::load(config)?;
    let t = c
        .proxy
        .targets
        .get(target)
        .cloned()
        .with_context(|| format!("no target named {target:?}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let columns = runtime.block_on(proxy::classify::sample(&t, sample))?;
    let detectors = masking::Detectors::new()?;
    // Suggestions grouped by (tags, mask) so the output stays short.
    let mut groups: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for col in &columns {
        let name = col.column.to_ascii_lowercase();
        let by_name = NAME_HINTS.iter().find(|(frag, _, _)| name.contains(frag));
        let hits = col
            .values
            .iter()
            .filter(|v| !detectors.scan(v.as_bytes()).is_empty())
            .count();
        let by_value = !col.values.is_empty() && hits * 2 >= col.values.len();
        let why = match (by_name, by_value) {
            (Some(_), true) => format!("name and {hits}/{} sampled values", col.values.len()),
            (Some(_), false) => "column name".to_owned(),
            (None, true) => format!(
                "{hits}/{} sampled values matched detectors",
                col.values.len()
            ),
            (None, false) => continue,
        };
        let (tags, mask) = by_name.map_or(("pii", "full"), |(_, t, m)| (*t, *m));
        let full = format!("{}.{}.{}", col.schema, col.table, col.column);
        groups
            .entry((tags.to_owned(), mask.to_owned()))
            .or_default()
            .push((full, format!("{} ({why})", col.type_name)));
    }
    println!("# Suggested by `gatehouse classify` for target {target:?}: review before use.");
    if groups.is_empty() {
        println!("# Nothing looked sensitive in {} columns.", columns.len());
    }
    for ((tags, mask), cols) in groups {
        println!("\n[[sensitive]]\ntarget = {target:?}\ncolumns = [");
        for (c, why) in &cols {
            println!("  {c:?},  # {why}");
        }
        let tags: Vec<String> = tags.split(',').map(|t| format!("{t:?}")).collect();
        println!("]\ntags = [{}]\nmask = {mask:?}", tags.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
