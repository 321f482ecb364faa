#[path = "lineage_common.rs"]
mod common;
fn chain(depth: usize, body: &dyn Fn(&str) -> String) -> String {
    let mut cat = sql::lineage::MemoryCatalog::new().table("public", "t", &["a"]);
    for i in 0..depth {
        let base = if i == 0 { "public.t".to_string() } else { format!("public.v{}", i - 1) };
        cat.insert("public", &format!("v{i}"), &["a"], Some(body(&base)));
    }
    let q = format!("SELECT a FROM v{}", depth - 1);
    let r = sql::lineage::lineage(&q, &common::path(), &cat);
    format!("{:?}", r.map(|l| l.outputs.len()).map_err(|e| e.to_string().chars().take(70).collect::<String>()))
}
#[test]
fn dbg() {
    let kb: usize = std::env::var("KB").unwrap_or("2048".into()).parse().unwrap();
    std::thread::Builder::new().stack_size(kb * 1024).spawn(|| {
    let subq = |base: &str| { let mut sub = format!("SELECT a FROM {base}"); for _ in 0..21 { sub = format!("SELECT s.a FROM ({sub}) s WHERE s.a IS NOT NULL"); } sub };
    let exprs = |base: &str| format!("SELECT {}a{} AS a FROM {base}", "lower(".repeat(90), ")".repeat(90));
    let few = |base: &str| { let mut sub = format!("SELECT a FROM {base}"); for _ in 0..3 { sub = format!("SELECT s.a FROM ({sub}) s WHERE s.a IS NOT NULL"); } sub };
    for d in [1usize, 2, 3, 5, 8, 9] {
        println!("subq {d}: {}", chain(d, &subq));
        println!("exprs {d}: {}", chain(d, &exprs));
        println!("few {d}: {}", chain(d, &few));
    }
    let mut q = String::from("select email from users");
    for _ in 0..9 { q = format!("select query_to_xml('{}', true, false, '') AS x", q.replace('\'', "''")); }
    println!("xml9: {:?}", sql::lineage::lineage(&q, &common::path(), &common::catalog()).map(|l| l.outputs.len()));
    }).unwrap().join().unwrap();
}
