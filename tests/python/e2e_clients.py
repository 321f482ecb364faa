"""Python clients through Gatehouse, for the Rust end-to-end suite (crates/gatehouse/tests/e2e).

Usage: PGPASSWORD=<token> python e2e_clients.py HOST PORT USER [DBNAME]

Runs psycopg 3 (server-side parameters, binary results, prepared statements, transactions,
executemany, pipeline mode, COPY) and SQLAlchemy (Core Table and ORM) against the proxy and
prints ONE line of JSON with what it saw; the Rust test checks the values. Any exception
propagates (non-zero exit, traceback on stderr).
"""

import json
import os
import sys
from decimal import Decimal

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


def psycopg_checks(conninfo):
    out = {}
    with psycopg.connect(conninfo, application_name="psycopg-e2e") as conn:
        cur = conn.cursor()
        # Server-side parameters: psycopg 3 sends them with Parse/Bind (extended protocol);
        # %t forces the text format, so the audit trail shows them as typed.
        cur.execute(
            "SELECT %t::int + 1, %t::text, %t::int IS NULL, %b::bytea, %t::numeric * 2",
            (41, "héllo", None, b"\x00\xffA", Decimal("1.25")),
        )
        r = cur.fetchone()
        out["params"] = [r[0], r[1], r[2], r[3].hex(), str(r[4])]

        # Binary results and binary parameters.
        bcur = conn.cursor(binary=True)
        bcur.execute("SELECT %b::int8 * 2, %b::text", (2**40, "bin"))
        out["binary"] = list(bcur.fetchone())

        # The same statement prepared server-side and reused.
        got = []
        for i in range(6):
            cur.execute("SELECT %s::int * %s::int", (i, i), prepare=True)
            got.append(cur.fetchone()[0])
        out["prepared"] = got

        cur.execute(
            "SELECT current_setting('gatehouse.identity'), current_setting('application_name')"
        )
        out["identity"], out["application_name"] = cur.fetchone()
        conn.commit()

        # Transactions: one that commits, one that fails and rolls back.
        cur.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.commit()
        with conn.transaction():
            cur.execute("INSERT INTO items VALUES (%s, %s)", (1, "first"))
        try:
            with conn.transaction():
                cur.execute("INSERT INTO items VALUES (%s, %s)", (2, "second"))
                cur.execute("INSERT INTO items VALUES (%s, %s)", (1, "duplicate"))
        except psycopg.errors.UniqueViolation as e:
            out["duplicate_sqlstate"] = e.sqlstate
        cur.execute("SELECT array_agg(id ORDER BY id) FROM items")
        out["after_rollback"] = cur.fetchone()[0]
        conn.commit()

        # executemany (pipeline mode under the hood in psycopg >= 3.1).
        cur.executemany(
            "INSERT INTO items VALUES (%s, %s)", [(i, f"item {i}") for i in range(10, 110)]
        )
        conn.commit()
        cur.execute("SELECT count(*), min(id), max(id) FROM items")
        out["executemany"] = list(cur.fetchone())

        # Explicit pipeline: several queries before any result is read.
        with conn.pipeline():
            curs = [conn.execute("SELECT %s::int * 10", (i,)) for i in range(8)]
        out["pipeline"] = [c.fetchone()[0] for c in curs]

        # COPY both ways.
        with cur.copy("COPY items (id, name) FROM STDIN") as copy:
            for i in range(200, 300):
                copy.write_row((i, f"copied {i}"))
        with cur.copy("COPY (SELECT id FROM items WHERE id >= 200 ORDER BY id) TO STDOUT") as copy:
            out["copy_out"] = [int(row[0]) for row in copy.rows()]
        conn.commit()

        # An error outside a transaction block, then the connection is still usable.
        conn.autocommit = True
        try:
            cur.execute("SELECT 1 / %s::int", (0,))
        except psycopg.errors.DivisionByZero as e:
            out["division_sqlstate"] = e.sqlstate
        cur.execute("SELECT 'still alive'")
        out["after_error"] = cur.fetchone()[0]
    return out


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    author: Mapped[str]
    body: Mapped[str]


def sqlalchemy_checks(host, port, user, dbname):
    out = {}
    url = sa.engine.URL.create(
        "postgresql+psycopg",
        username=user,
        password=os.environ["PGPASSWORD"],
        host=host,
        port=int(port),
        database=dbname,
    )
    engine = sa.create_engine(url, connect_args={"application_name": "sqlalchemy-e2e"})
    meta = sa.MetaData()
    people = sa.Table(
        "people",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("email", sa.String(100)),
    )
    meta.create_all(engine)
    with engine.begin() as c:
        c.execute(
            people.insert(),
            [
                {"name": "Ada", "email": "ada@example.com"},
                {"name": "Grace", "email": None},
                {"name": "Linus", "email": "linus@example.com"},
            ],
        )
    with engine.connect() as c:
        rows = c.execute(
            sa.select(people.c.name, people.c.email)
            .where(people.c.name.in_(["Ada", "Grace"]))
            .order_by(people.c.id)
        ).all()
        out["core_rows"] = [list(r) for r in rows]
        out["core_count"] = c.execute(sa.select(sa.func.count()).select_from(people)).scalar()

    # ORM: unit of work, autoincrement ids, a failed flush rolled back.
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Note(author="ada", body="hello"), Note(author="grace", body="world")])
        s.commit()
    with Session(engine) as s:
        s.add(Note(id=1, author="dup", body="clash"))
        try:
            s.commit()
        except sa.exc.IntegrityError as e:
            out["orm_integrity_sqlstate"] = e.orig.sqlstate
            s.rollback()
        notes = s.scalars(sa.select(Note).order_by(Note.id)).all()
        out["orm_notes"] = [[n.id, n.author, n.body] for n in notes]
        ada = s.scalars(sa.select(Note).where(Note.author == "ada")).one()
        ada.body = "updated"
        s.commit()
        out["orm_updated"] = s.scalar(sa.select(Note.body).where(Note.id == ada.id))
    with engine.connect() as c:
        out["sqlalchemy_identity"] = c.execute(
            sa.text("SELECT current_setting('gatehouse.identity')")
        ).scalar()
    engine.dispose()
    return out


def main():
    host, port, user = sys.argv[1], sys.argv[2], sys.argv[3]
    dbname = sys.argv[4] if len(sys.argv) > 4 else "app"
    conninfo = f"host={host} port={port} user={user} dbname={dbname} connect_timeout=10"
    result = {"psycopg_version": psycopg.__version__, "sqlalchemy_version": sa.__version__}
    result.update(psycopg_checks(conninfo))
    result.update(sqlalchemy_checks(host, port, user, dbname))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
