"""Wire fidelity through Gatehouse with psycopg 3 (driven by crates/gatehouse/tests/e2e/
wire_fidelity.rs): what libpq reports of the session (backend PID, application_name) agrees
with the server, cancellation and pg_terminate_backend reach the right backend, and sessions
in client encodings other than UTF-8 (LATIN9, EUC_JP, a SET in the middle) read, write, mask
and report errors correctly.

Usage: wire_fidelity.py HOST PORT USER DBNAME (password in PGPASSWORD; the upstream's own
DSN, for an administrator's pg_terminate_backend, in FID_UPSTREAM_DSN). Prints one JSON
object on its last line.
"""

import json
import os
import sys
import threading
import time

import psycopg

host, port, user, dbname = sys.argv[1:5]


def connect(**extra):
    return psycopg.connect(
        host=host, port=port, user=user, dbname=dbname, autocommit=True, **extra
    )


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


r = {}

with connect(application_name="fid-app") as c:
    r["pid_matches"] = c.info.backend_pid == one(c, "SELECT pg_backend_pid()")
    r["app_reported"] = c.info.parameter_status("application_name")
    r["app_server"] = one(c, "SELECT current_setting('application_name')")
    c.execute("SET application_name = 'renamed'")
    r["app_after_set"] = c.info.parameter_status("application_name")

    # LISTEN/NOTIFY: the notification names the backend the client was told about.
    c.execute("LISTEN fidelity")
    c.execute("NOTIFY fidelity, 'hello'")
    got = list(c.notifies(timeout=5, stop_after=1))
    r["notify_payload"] = got[0].payload if got else None
    r["notify_pid_matches"] = bool(got) and got[0].pid == c.info.backend_pid

    # Cancellation through the proxy: the key the client holds cancels its own query (one
    # waiting for a lock another session holds).
    with connect() as holder, connect() as busy:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
        errors = []

        def run():
            try:
                busy.execute("SELECT count(*) FROM notes")
            except psycopg.Error as e:
                errors.append(e.sqlstate)

        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.5)
        busy.cancel_safe()
        t.join(15)
        holder.execute("ROLLBACK")
        r["cancel_sqlstate"] = errors[0] if errors else None
        r["after_cancel"] = one(busy, "SELECT 1")

    # An administrator's pg_terminate_backend (on the server directly) with the PID the
    # client was given ends that session.
    victim = connect()
    with psycopg.connect(os.environ["FID_UPSTREAM_DSN"], autocommit=True) as admin:
        r["terminated"] = one(
            admin, "SELECT pg_terminate_backend(%s)", [victim.info.backend_pid]
        )
    try:
        victim.execute("SELECT 1")
        r["victim_alive"] = True
    except psycopg.OperationalError:
        r["victim_alive"] = False
    victim.close()

    r["utf8_hash"] = one(c, "SELECT secret FROM people WHERE id = 1")
    r["utf8_name"] = one(c, "SELECT name FROM people WHERE id = 1")

# LATIN9 from the start: text in and out, errors quoting non-ASCII text, masked values.
with connect(client_encoding="LATIN9") as c:
    r["latin9_encoding"] = c.info.encoding
    r["latin9_select"] = one(c, "SELECT 'café € ñ'")
    c.execute("INSERT INTO notes VALUES (%s)", ["Grüße €"])
    r["latin9_roundtrip"] = one(c, "SELECT v FROM notes WHERE v LIKE 'Gr%%'")
    try:
        c.execute("SELECT 'é€'::int")
    except psycopg.Error as e:
        r["latin9_error"] = [e.sqlstate, e.diag.message_primary]
    r["latin9_after_error"] = one(c, "SELECT 'ok é'")
    r["latin9_name"] = one(c, "SELECT name FROM people WHERE id = 1")
    r["latin9_hash"] = one(c, "SELECT secret FROM people WHERE id = 1")
    # The extended protocol with a non-ASCII statement name and parameter.
    cur = c.cursor()
    cur.execute("SELECT %s::text || 'ü'", ["ä"], prepare=True)
    r["latin9_prepared"] = cur.fetchone()[0]

# A multi-byte encoding.
with connect(client_encoding="EUC_JP") as c:
    r["eucjp_select"] = one(c, "SELECT '日本語'")
    try:
        c.execute("SELECT '日本'::int")
    except psycopg.Error as e:
        r["eucjp_error"] = [e.sqlstate, e.diag.message_primary]
    r["eucjp_name"] = one(c, "SELECT name FROM people WHERE id = 2")

# Changed in the middle of a session, then back.
with connect() as c:
    c.execute("SET client_encoding TO 'LATIN1'")
    r["set_encoding"] = c.info.encoding
    r["set_select"] = one(c, "SELECT 'señor'")
    c.execute("RESET client_encoding")
    r["reset_select"] = one(c, "SELECT 'señor ☃'")

# An encoding whose characters can hide a quote is refused at startup, clearly.
try:
    connect(client_encoding="SJIS").close()
    r["sjis"] = "accepted"
except psycopg.OperationalError as e:
    r["sjis"] = str(e)

print(json.dumps(r))
