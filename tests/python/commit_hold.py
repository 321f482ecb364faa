"""psycopg 3 in a transaction whose COMMIT waits for approval (`@approval_mode("commit")`).

Usage: commit_hold.py HOST PORT USER DBNAME; password from PGPASSWORD. Runs one UPDATE of the
ledger inside a transaction (psycopg's default: the extended protocol), then commit(), which
waits until the test approves or denies. Prints one JSON object: the UPDATE's rowcount, whether
the commit succeeded (or the error's SQLSTATE, message and detail), the transaction status after
it, and that the connection still works.
"""

import json
import sys

import psycopg

host, port, user, dbname = sys.argv[1:5]
out = {}
notices = []
with psycopg.connect(host=host, port=port, user=user, dbname=dbname) as conn:
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    with conn.cursor() as cur:
        cur.execute("UPDATE ledger SET amount = amount + %s WHERE id = %s", (5, 1))
        out["rowcount"] = cur.rowcount
    try:
        conn.commit()
        out["committed"] = True
    except psycopg.Error as e:
        out["committed"] = False
        out["sqlstate"] = e.sqlstate
        out["message"] = e.diag.message_primary
        out["detail"] = e.diag.message_detail
    out["status"] = conn.info.transaction_status.name
    out["after"] = conn.execute("SELECT 1").fetchone()[0]
    conn.rollback()
out["notices"] = notices
print(json.dumps(out))
