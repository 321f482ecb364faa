"""psycopg 3 (text and binary results, server-side prepared) and SQLAlchemy reading a table
with masked columns through Gatehouse, and SQLAlchemy's inspector reading its shape. Prints every value received as one JSON list; the
Rust test checks that no clear value is among them.

Usage: masking_clients.py HOST PORT USER DBNAME   (password in PGPASSWORD)
"""
import json
import sys

import psycopg
import sqlalchemy as sa

host, port, user, db = sys.argv[1:5]
seen = []
with psycopg.connect(host=host, port=int(port), user=user, dbname=db) as conn:
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT id, email, ssn FROM users WHERE id = %s", (1,), prepare=True)
            seen += [str(v) for v in cur.fetchone()]
            cur.execute("SELECT lower(email) FROM users")
            seen += [str(r[0]) for r in cur.fetchall()]
engine = sa.create_engine(f"postgresql+psycopg://{user}@{host}:{port}/{db}")
users = sa.Table("users", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("email", sa.Text))
with engine.connect() as c:
    seen += [str(r.email) for r in c.execute(sa.select(users.c.id, users.c.email))]
# The inspector's catalog queries must work for a principal who may not unmask: a refusal
# raises here and fails the test.
insp = sa.inspect(engine)
columns = [col["name"] for col in insp.get_columns("users")]
assert "email" in columns and "ssn" in columns, columns
insp.get_pk_constraint("users")
insp.get_foreign_keys("users")
insp.get_indexes("users")
assert "users" in insp.get_table_names()
print(json.dumps(seen))
