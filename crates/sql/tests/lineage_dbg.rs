#[path = "lineage_common.rs"]
mod common;
#[test]
fn dbg() {
    let kb: usize = std::env::var("KB").unwrap().parse().unwrap();
    let which = std::env::var("WHICH").unwrap();
    let parse_only = std::env::var("PARSE").is_ok();
    let q = match which.as_str() {
        "subq" => { let mut sub = String::from("SELECT email FROM users"); for _ in 0..23 { sub = format!("SELECT s.email FROM ({sub}) s WHERE s.email IS NOT NULL"); } sub }
        "expr" => format!("SELECT {}email{} FROM users", "lower(".repeat(95), ")".repeat(95)),
        _ => { let mut q = String::from("select email from users"); for _ in 0..7 { q = format!("select query_to_xml('{}', true, false, '') AS x", q.replace('\'', "''")); } q }
    };
    let ok = std::thread::Builder::new().stack_size(kb * 1024).spawn(move || {
        if parse_only { pg_query::parse(&q).is_ok() } else { sql::lineage::lineage(&q, &common::path(), &common::catalog()).is_ok() }
    }).unwrap().join().unwrap();
    println!("RESULT {ok}");
}
