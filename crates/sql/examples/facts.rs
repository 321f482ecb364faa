//! Print the facts of each SQL string given on the command line, as JSON.
//!
//! `cargo run -p sql --example facts -- "DELETE FROM t WHERE 1=1; DROP TABLE x"`

fn main() {
    let ctx = sql::AnalyzeContext::default();
    for arg in std::env::args().skip(1) {
        let analysis = sql::analyze(&arg, &ctx);
        match serde_json::to_string_pretty(&analysis) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("cannot print: {e}"),
        }
    }
}
