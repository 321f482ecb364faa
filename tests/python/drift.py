"""Error and COPY shapes that once made Gatehouse's per-statement bookkeeping drift from the
server's (driven by crates/gatehouse/tests/e2e/wire_drift.rs): executemany with a failing
row, libpq pipeline mode with errors in the middle, COPY FROM/TO in every psycopg shape
(text, binary, rows, blocks, errors inside). Every step's result must equal what the server
gives directly; the Rust side checks the proxy's log and audit trail.

Usage: drift.py HOST PORT USER DBNAME (password in PGPASSWORD). Prints one JSON object on
its last line.
"""

import json
import sys

import psycopg
from psycopg import errors

host, port, user, dbname = sys.argv[1:5]
r = {}


def connect(**kw):
    return psycopg.connect(host=host, port=port, user=user, dbname=dbname, **kw)


with connect(autocommit=True) as c:
    c.execute("CREATE TABLE d (id int PRIMARY KEY, v text)")
    cur = c.cursor()

    # executemany with a failing row (duplicate key in the middle): psycopg pipelines it.
    try:
        cur.executemany("INSERT INTO d VALUES (%s, %s)", [(1, "a"), (2, "b"), (1, "dup"), (3, "c")])
    except errors.UniqueViolation:
        r["executemany_error"] = "23505"
    r["after_executemany"] = c.execute("SELECT count(*) FROM d").fetchone()[0]

    # Pipelined calls of built-ins with effects (none of which can change a setting): not
    # held back as if they could.
    cur.executemany("SELECT pg_notify('drift', %s)", [(str(i),) for i in range(5)])
    cur.executemany("SELECT pg_advisory_xact_lock(%s)", [(i,) for i in range(5)])
    r["inert_builtins"] = "ok"

    # Pipeline mode, errors in the middle, then recovery.
    got = []
    try:
        with c.pipeline() as p:
            c.execute("INSERT INTO d VALUES (10, 'x')")
            c.execute("SELECT 1/0")
            c.execute("INSERT INTO d VALUES (11, 'y')")
            p.sync()
    except errors.DivisionByZero:
        got.append("22012")
    with c.pipeline() as p:
        c1 = c.execute("SELECT count(*) FROM d WHERE id >= 10")
        c2 = c.execute("SELECT count(*) FROM d")
        p.sync()
        got.append(c1.fetchone()[0])
        got.append(c2.fetchone()[0])
    r["pipeline"] = got

    # Pipeline with several syncs and an error in the second batch.
    got = []
    try:
        with c.pipeline() as p:
            a = c.execute("SELECT 1")
            p.sync()
            c.execute("SELECT * FROM no_such_table")
            p.sync()
            b = c.execute("SELECT 2")
            p.sync()
    except errors.UndefinedTable:
        got.append("42P01")
    r["pipeline_syncs"] = got
    r["after_pipeline"] = c.execute("SELECT 3").fetchone()[0]

    # COPY FROM STDIN: text rows, binary rows, raw blocks, an error inside.
    with cur.copy("COPY d (id, v) FROM STDIN") as cp:
        for i in range(100, 110):
            cp.write_row((i, f"row {i}"))
    with cur.copy("COPY d (id, v) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(["int4", "text"])
        for i in range(200, 210):
            cp.write_row((i, f"bin {i}"))
    with cur.copy("COPY d (id, v) FROM STDIN") as cp:
        cp.write("300\tblock\n301\tblock\n")
    try:
        with cur.copy("COPY d (id, v) FROM STDIN") as cp:
            cp.write_row((400, "ok"))
            cp.write_row((100, "duplicate"))
    except errors.UniqueViolation:
        r["copy_error"] = "23505"
    try:
        with cur.copy("COPY d (id, v) FROM STDIN") as cp:
            cp.write_row((500, "ok"))
            raise RuntimeError("client gives up")
    except RuntimeError:
        r["copy_fail"] = "client"
    r["after_copy_in"] = c.execute("SELECT count(*) FROM d").fetchone()[0]

    # COPY TO STDOUT: rows, binary, blocks; a COPY that fails at start.
    with cur.copy("COPY (SELECT id, v FROM d WHERE id < 110 ORDER BY id) TO STDOUT") as cp:
        r["copy_out_rows"] = len(list(cp.rows()))
    with cur.copy("COPY (SELECT id FROM d ORDER BY id) TO STDOUT (FORMAT BINARY)") as cp:
        cp.set_types(["int4"])
        r["copy_out_binary"] = len(list(cp.rows()))
    with cur.copy("COPY d TO STDOUT") as cp:
        r["copy_out_bytes"] = sum(len(b) for b in cp)
    try:
        with cur.copy("COPY no_such_table TO STDOUT") as cp:
            list(cp)
    except errors.UndefinedTable:
        r["copy_out_error"] = "42P01"

    # COPY inside a pipeline is not allowed by psycopg; inside a transaction it is.
    with c.transaction():
        with cur.copy("COPY d (id, v) FROM STDIN") as cp:
            cp.write_row((600, "tx"))
        c.execute("SELECT 1")
    r["final"] = c.execute("SELECT count(*) FROM d").fetchone()[0]

    # Server-side cursors (named portals fetched in pieces), with an error while fetching.
    with c.transaction():
        with c.cursor(name="sc") as sc:
            sc.itersize = 7
            sc.execute("SELECT id FROM d ORDER BY id")
            r["server_cursor"] = len(list(sc))
    try:
        with c.transaction():
            with c.cursor(name="bad") as sc:
                sc.execute("SELECT 1/(id - 105) FROM d ORDER BY id")
                list(sc)
    except errors.DivisionByZero:
        r["server_cursor_error"] = "22012"
    r["after_cursor"] = c.execute("SELECT 4").fetchone()[0]

print(json.dumps(r))
