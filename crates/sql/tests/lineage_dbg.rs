#[path = "lineage_common.rs"]
mod common;
#[test]
fn dbg() {
    for s in std::env::var("Q").unwrap().split(";;") {
        println!(
            "{s}\n  => {:?}",
            sql::lineage::lineage(s, &common::path(), &common::catalog())
        );
        if std::env::var("TREE").is_ok() {
            println!(
                "{}",
                serde_json::to_string(&pg_query::parse(s).unwrap().protobuf).unwrap()
            );
        }
    }
}
