#![allow(clippy::unwrap_used)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].as_str();
    for q in &args[2..] {
        match mode {
            "fp" => println!("{:?} => {:?}", q, pg_query::fingerprint(q).map(|f| f.hex)),
            "json" => println!(
                "{}",
                serde_json::to_string(
                    &pg_query::parse(q)
                        .map(|r| r.protobuf)
                        .map_err(|e| e.to_string())
                )
                .unwrap()
            ),
            "plpgsql" => println!(
                "{}",
                pg_query::parse_plpgsql(q)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| e.to_string())
            ),
            _ => {}
        }
    }
}
