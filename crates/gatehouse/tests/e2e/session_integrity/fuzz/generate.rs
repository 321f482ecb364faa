//! The message generator: a seeded PRNG, the statement pools, and how messages are drawn
//! and mixed (with the one pattern that crashes PostgreSQL 15 itself left out).

use super::*;

/// splitmix64: tiny, deterministic, good enough to pick from pools.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub(super) fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// Reads of sensitive columns: plain, expressions (no origin in RowDescription), children,
/// partitions, joins, subqueries, CTEs, parameters, temporary objects made from them.
pub(super) const SENSITIVE_READS: &[&str] = &[
    "SELECT id, name, email, ssn FROM users ORDER BY id",
    "SELECT * FROM users",
    "SELECT lower(ssn), upper(email) FROM users",
    "SELECT email || '' AS e, replace(ssn, '-', '') AS s FROM users",
    "SELECT ssn FROM people",
    "SELECT * FROM people_1",
    "SELECT email, ssn FROM kids",
    "SELECT u.email, o.total FROM users u JOIN orders o ON o.user_id = u.id",
    "SELECT (SELECT lower(email) FROM users WHERE id = 1) AS e",
    "WITH x AS (SELECT ssn FROM public.users) SELECT * FROM x",
    "SELECT lower(ssn) FROM users WHERE id = $1",
    "SELECT email FROM users WHERE id > $1",
    "SELECT * FROM tmp_v",
    "SELECT * FROM tmp_s",
];

/// Reads with nothing sensitive in them (or only through search_path / temp tables).
pub(super) const PLAIN_READS: &[&str] = &[
    "SELECT id, name FROM users ORDER BY id",
    "SELECT name FROM pets",
    "SELECT id, total FROM orders ORDER BY id",
    "SELECT * FROM harmless",
    "SELECT 1 AS one",
    "SELECT * FROM shadow.users",
    "SELECT count(*) FROM users",
    "SELECT id, name FROM users WHERE id = $1",
    "SELECT * FROM tmp_a",
    "SELECT upper(name) FROM users",
    "SHOW search_path",
];

pub(super) const CURSORS: &[&str] = &["c1", "h1", "pt1"];
pub(super) const PREPARED: &[&str] = &["p1", "s1"];
pub(super) const STATEMENTS: &[&str] = &["", "s1", "s2", "p1"];
pub(super) const PORTALS: &[&str] = &["", "pt1", "c1", "h1"];
pub(super) const FETCHES: &[&str] = &[
    "FETCH ALL FROM",
    "FETCH 1 FROM",
    "FETCH NEXT FROM",
    "FETCH BACKWARD 1 FROM",
    "FETCH ABSOLUTE 1 FROM",
    "MOVE 1 IN",
    "MOVE ABSOLUTE 0 IN",
];
pub(super) const TRANSACTION: &[&str] = &[
    "BEGIN",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT sp",
    "ROLLBACK TO SAVEPOINT sp",
    "RELEASE SAVEPOINT sp",
];
pub(super) const SEARCH_PATH: &[&str] = &[
    "SET search_path = shadow",
    "SET search_path = shadow, public",
    "SET search_path = public",
    "RESET search_path",
    "SET LOCAL search_path = shadow",
    "SELECT set_config('search_path', 'shadow', false)",
    "SET search_path = pg_temp, public",
];
pub(super) const TEMP: &[&str] = &[
    "CREATE TEMP TABLE tmp_a (id int, v text)",
    "CREATE TEMP TABLE tmp_b AS SELECT id, name FROM users",
    "CREATE TEMP TABLE tmp_s AS SELECT id, email FROM users",
    "CREATE TEMP VIEW tmp_v AS SELECT id, ssn FROM users",
    "CREATE TEMP TABLE users (id int, name text, email text, ssn text)",
    "INSERT INTO tmp_a VALUES (1, 'x')",
    "INSERT INTO tmp_a SELECT id, email FROM users",
    "DROP TABLE tmp_a",
    "DROP TABLE IF EXISTS tmp_b",
    "DROP VIEW tmp_v",
    "DROP TABLE users",
    "DISCARD ALL",
];
pub(super) const COPY_OUT: &[&str] = &[
    "COPY (SELECT email, ssn FROM users) TO STDOUT",
    "COPY (SELECT name FROM pets) TO STDOUT",
    "COPY users TO STDOUT",
    "COPY (SELECT lower(email) FROM users) TO STDOUT WITH (FORMAT csv)",
    "COPY users (ssn) TO STDOUT WITH (FORMAT binary)",
];
pub(super) const COPY_IN: &[&str] = &["COPY pets (id, name) FROM STDIN", "COPY tmp_a FROM STDIN"];
pub(super) const COPY_ROWS: &[&str] = &["7\tFuzz\n", "8\tMore\n9\tRows\n", "not a row\n"];
pub(super) const ERRORS: &[&str] = &[
    "SELECT 1/0",
    "SELECT * FROM no_such_table",
    "SELECT nope FROM users",
];

pub(super) struct Gen {
    pub(super) rng: Rng,
    /// Parameters of what each statement name was last prepared with (optimistic).
    pub(super) params: HashMap<String, usize>,
}

pub(super) fn params_of(sql: &str) -> usize {
    (1..=3)
        .take_while(|i| sql.contains(&format!("${i}")))
        .count()
}

impl Gen {
    pub(super) fn read(&mut self) -> String {
        let pool = if self.rng.chance(60) {
            SENSITIVE_READS
        } else {
            PLAIN_READS
        };
        self.rng.pick(pool).into()
    }

    /// A read without parameters (cursor bodies, SQL PREPARE without types).
    pub(super) fn read_np(&mut self) -> String {
        loop {
            let r = self.read();
            if !r.contains('$') {
                return r;
            }
        }
    }

    pub(super) fn statement(&mut self) -> String {
        match self.rng.below(100) {
            0..=29 => self.read(),
            30..=41 => self.cursor_op(),
            42..=53 => self.rng.pick(TRANSACTION).into(),
            54..=63 => self.prepare_op(),
            64..=71 => self.rng.pick(SEARCH_PATH).into(),
            72..=81 => self.rng.pick(TEMP).into(),
            82..=89 => self.rng.pick(COPY_OUT).into(),
            90..=93 => self.rng.pick(ERRORS).into(),
            _ => {
                let n = 2 + self.rng.below(2);
                let mut parts: Vec<String> = (0..n).map(|_| self.simple_one()).collect();
                if self.rng.chance(10) {
                    let at = self.rng.below(parts.len());
                    parts[at] = self.rng.pick(COPY_IN).into();
                }
                parts.join("; ")
            }
        }
    }

    /// One statement that is not itself a multi-statement string.
    pub(super) fn simple_one(&mut self) -> String {
        loop {
            let s = self.statement();
            if !s.contains("; ") {
                return s;
            }
        }
    }

    pub(super) fn cursor_op(&mut self) -> String {
        let name = self.rng.pick(CURSORS);
        match self.rng.below(10) {
            0..=3 => {
                let scroll = if self.rng.chance(30) { "SCROLL " } else { "" };
                let hold = if name == "h1" || self.rng.chance(20) {
                    "WITH HOLD "
                } else {
                    ""
                };
                let body = self.read_np();
                format!("DECLARE {name} {scroll}CURSOR {hold}FOR {body}")
            }
            4..=7 => format!("{} {name}", self.rng.pick(FETCHES)),
            8 => format!("CLOSE {name}"),
            _ => "CLOSE ALL".into(),
        }
    }

    pub(super) fn prepare_op(&mut self) -> String {
        let name = self.rng.pick(PREPARED);
        match self.rng.below(10) {
            0..=3 => {
                let body = self.read();
                let n = params_of(&body);
                self.params.insert(name.into(), n);
                let types = if n > 0 { "(int)" } else { "" };
                format!("PREPARE {name}{types} AS {body}")
            }
            4..=6 => match self.params.get(name) {
                Some(1) => format!("EXECUTE {name}(1)"),
                _ => format!("EXECUTE {name}"),
            },
            7..=8 => format!("DEALLOCATE {name}"),
            _ => "DEALLOCATE ALL".into(),
        }
    }

    pub(super) fn parse(&mut self, out: &mut Vec<Fm>) -> String {
        let name = self.rng.pick(&STATEMENTS[..3]).to_owned();
        let sql = if self.rng.chance(65) {
            self.read()
        } else if self.rng.chance(90) {
            self.simple_one()
        } else {
            self.statement()
        };
        self.params.insert(name.clone(), params_of(&sql));
        out.push(Fm::Parse(name.clone(), sql));
        name
    }

    pub(super) fn bind(&mut self, out: &mut Vec<Fm>, statement: &str) -> String {
        let portal = self.rng.pick(PORTALS).to_owned();
        let params = self.params.get(statement).copied().unwrap_or(0);
        let formats: &[i16] = match self.rng.below(6) {
            0..=2 => &[],
            3 => &[0],
            4 => &[1],
            _ => &[1, 0],
        };
        out.push(b(&portal, statement, params, formats));
        portal
    }

    /// Parse/Bind/Describe/Execute as a driver sends it.
    pub(super) fn extended(&mut self, out: &mut Vec<Fm>) {
        let stmt = self.parse(out);
        if self.rng.chance(30) {
            out.push(d(b'S', &stmt));
        }
        let portal = self.bind(out, &stmt);
        if self.rng.chance(40) {
            out.push(d(b'P', &portal));
        }
        let rows = if self.rng.chance(25) { 1 } else { 0 };
        out.push(x(&portal, rows));
        if rows == 1 && self.rng.chance(60) {
            out.push(x(&portal, 0));
        }
        if self.rng.chance(70) {
            out.push(Fm::Sync);
        }
    }

    /// One protocol message on its own, names drawn from the shared sets.
    pub(super) fn single(&mut self, out: &mut Vec<Fm>) {
        match self.rng.below(12) {
            0 => {
                self.parse(out);
            }
            1 | 2 => {
                let stmt = self.rng.pick(STATEMENTS).to_owned();
                self.bind(out, &stmt);
            }
            3 => {
                let kind = if self.rng.chance(50) { b'S' } else { b'P' };
                let pool = if kind == b'S' { STATEMENTS } else { PORTALS };
                out.push(d(kind, self.rng.pick(pool)));
            }
            4 | 5 => out.push(x(self.rng.pick(PORTALS), self.rng.below(2) as i32)),
            6 => {
                let kind = if self.rng.chance(50) { b'S' } else { b'P' };
                let pool = if kind == b'S' { STATEMENTS } else { PORTALS };
                out.push(c(kind, self.rng.pick(pool)));
            }
            7 => out.push(Fm::Flush),
            8 | 9 => out.push(Fm::Sync),
            10 => out.push(cd(self.rng.pick(COPY_ROWS))),
            _ => out.push(if self.rng.chance(50) {
                Fm::CopyDone
            } else {
                Fm::CopyFail
            }),
        }
    }

    /// COPY FROM STDIN (simple or extended), data, and usually its end.
    pub(super) fn copy_in(&mut self, out: &mut Vec<Fm>) {
        let sql = self.rng.pick(COPY_IN);
        if self.rng.chance(60) {
            out.push(q(sql));
        } else {
            out.push(p("", sql));
            out.push(b("", "", 0, &[]));
            out.push(x("", 0));
            if self.rng.chance(50) {
                out.push(Fm::Sync);
            }
        }
        for _ in 0..self.rng.below(3) {
            out.push(cd(self.rng.pick(COPY_ROWS)));
            if self.rng.chance(15) {
                out.push(if self.rng.chance(50) {
                    Fm::Flush
                } else {
                    Fm::Sync
                });
            }
        }
        match self.rng.below(100) {
            0..=69 => out.push(Fm::CopyDone),
            70..=84 => out.push(Fm::CopyFail),
            _ => {}
        }
        if self.rng.chance(50) {
            out.push(Fm::Sync);
        }
    }

    /// A cursor declared in one message and read in later ones, by FETCH or by Execute.
    pub(super) fn cursor_flow(&mut self, out: &mut Vec<Fm>) {
        let name = self.rng.pick(CURSORS);
        if self.rng.chance(70) {
            out.push(q("BEGIN"));
        }
        let hold = if self.rng.chance(40) {
            "WITH HOLD "
        } else {
            ""
        };
        let body = self.read_np();
        out.push(q(&format!("DECLARE {name} CURSOR {hold}FOR {body}")));
        for _ in 0..1 + self.rng.below(3) {
            if self.rng.chance(50) {
                out.push(q(&format!("{} {name}", self.rng.pick(FETCHES))));
            } else {
                out.push(x(name, self.rng.below(2) as i32));
                out.push(Fm::Sync);
            }
        }
        if self.rng.chance(60) {
            out.push(q(self.rng.pick(&["COMMIT", "ROLLBACK", "CLOSE ALL"])));
        }
    }

    /// One sequence of about `10..=40` messages, with reads between some of them.
    pub(super) fn sequence(&mut self) -> Vec<Op> {
        let target = 10 + self.rng.below(31);
        let mut msgs = Vec::new();
        while msgs.len() < target {
            match self.rng.below(100) {
                0..=29 => msgs.push(Fm::Query(self.statement())),
                30..=49 => self.extended(&mut msgs),
                50..=69 => self.single(&mut msgs),
                70..=81 => self.copy_in(&mut msgs),
                _ => self.cursor_flow(&mut msgs),
            }
        }
        if self.rng.chance(85) && msgs.last() != Some(&Fm::Sync) {
            msgs.push(Fm::Sync);
        }
        avoid_server_crash(&mut msgs);
        // Split after some Syncs and Queries, reading in between (the proxy then sees
        // requests arrive while earlier responses are still on their way, and vice versa).
        let mut ops = Vec::new();
        let mut batch = Vec::new();
        for m in msgs {
            let boundary = matches!(m, Fm::Sync | Fm::Query(_) | Fm::Flush);
            batch.push(m);
            if boundary && self.rng.chance(12) {
                ops.push(Op::Send(std::mem::take(&mut batch)));
                ops.push(Op::Drain);
            }
        }
        if !batch.is_empty() {
            ops.push(Op::Send(batch));
        }
        ops.push(Op::Checkpoint);
        ops
    }
}

/// PostgreSQL 15.20 crashes (SIGSEGV, and the postmaster restarts every backend) on an
/// Execute of the unnamed portal after a simple-query FETCH or MOVE failed inside a
/// transaction block and a longer query followed (the unnamed portal left behind points into
/// freed memory), e.g. `BEGIN`, `FETCH 1 FROM nope`, a ~300-byte Query, Execute "". The
/// cluster is shared with the rest of the suite, so the fuzzer never sends that: an Execute
/// of "" must follow a Bind of "" with no Query or Sync in between, else it targets "pt1".
pub(super) fn avoid_server_crash(msgs: &mut [Fm]) {
    let mut bound = false;
    for m in msgs.iter_mut() {
        match m {
            Fm::Bind { portal, .. } if portal.is_empty() => bound = true,
            Fm::Query(_) | Fm::Sync => bound = false,
            Fm::Execute(portal, _) if portal.is_empty() && !bound => *portal = "pt1".into(),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a case
