//! Turning off or removing triggers, row-level security and its policies, rules and event
//! triggers; and their ordinary look-alikes.

use crate::harness::{run, Case, E::*};

#[test]
fn triggers() {
    const T: &[Case] = &[
        ("ALTER TABLE accounts DISABLE TRIGGER ALL",
            &[Class("ddl"), Command("ALTER TABLE"), Safeguard("trigger", "public.accounts.*"), NotOpaque]),
        ("alter table app.accounts disable trigger user", &[Safeguard("trigger", "app.accounts.*")]),
        ("ALTER TABLE \"Accounts\" DISABLE TRIGGER audit_trg", &[Safeguard("trigger", "public.Accounts.audit_trg")]),
        ("ALTER TABLE U&\"acc\\006funts\" DISABLE TRIGGER ALL", &[Safeguard("trigger", "public.accounts.*")]),
        ("ALTER TABLE IF EXISTS ONLY accounts /* c */ DISABLE -- c\n TRIGGER ALL", &[Safeguard("trigger", "public.accounts.*")]),
        ("ALTER TABLE accounts ADD COLUMN note text, DISABLE TRIGGER audit",
            &[Safeguard("trigger", "public.accounts.audit")]),
        ("ALTER TABLE accounts ENABLE REPLICA TRIGGER audit", &[Safeguard("trigger", "public.accounts.audit")]),
        ("ALTER FOREIGN TABLE ft DISABLE TRIGGER ALL", &[Safeguard("trigger", "public.ft.*")]),
        ("DROP TRIGGER audit ON accounts", &[Command("DROP TRIGGER"), Safeguard("trigger", "public.accounts.audit")]),
        ("drop trigger if exists \"Audit\" on app.\"Accounts\" cascade", &[Safeguard("trigger", "app.Accounts.Audit")]),
        ("CREATE OR REPLACE TRIGGER audit AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION noop()",
            &[Safeguard("trigger", "public.accounts.audit")]),
        ("CREATE OR REPLACE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            &[NotOpaque, Safeguard("trigger", "audit_fn")]),
        ("CREATE OR REPLACE FUNCTION app.ddl_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$",
            &[Safeguard("event trigger", "app.ddl_fn")]),
        ("SELECT 1; DROP TRIGGER audit ON accounts",
            &[Count(2), At(0), Benign, At(1), Safeguard("trigger", "public.accounts.audit")]),
        ("DO $$ BEGIN ALTER TABLE accounts DISABLE TRIGGER ALL; UPDATE accounts SET b = 0 WHERE id = 1; END $$",
            &[NotOpaque, Safeguard("trigger", "public.accounts.*")]),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'ALTER TABLE accounts DISABLE TRIGGER ALL'",
            &[Safeguard("trigger", "public.accounts.*")]),
        // Look-alikes.
        ("ALTER TABLE accounts ENABLE TRIGGER ALL", &[NoSafeguard, NotOpaque]),
        ("ALTER TABLE accounts ENABLE ALWAYS TRIGGER audit", &[NoSafeguard]),
        ("CREATE TRIGGER audit AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION audit_fn()", &[NoSafeguard]),
        ("CREATE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$", &[NoSafeguard]),
        ("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", &[NoSafeguard]),
        ("ALTER TRIGGER audit ON accounts RENAME TO audit2", &[NoSafeguard]),
        ("SELECT tgname FROM pg_trigger WHERE tgenabled = 'D'", &[Benign]),
        ("UPDATE settings SET disable_trigger = true WHERE id = 1", &[Benign]),
    ];
    run(T);
}

#[test]
fn row_level_security_and_policies() {
    const T: &[Case] = &[
        ("ALTER TABLE accounts DISABLE ROW LEVEL SECURITY",
            &[Safeguard("row level security", "public.accounts")]),
        ("alter table app.accounts no force row level security",
            &[Safeguard("row level security", "app.accounts")]),
        ("DROP POLICY tenant ON accounts", &[Command("DROP POLICY"), Safeguard("policy", "public.accounts.tenant")]),
        ("DROP POLICY IF EXISTS \"Tenant\" ON app.accounts", &[Safeguard("policy", "app.accounts.Tenant")]),
        ("ALTER POLICY tenant ON accounts USING (true)", &[Command("ALTER POLICY"), Safeguard("policy", "public.accounts.tenant")]),
        ("ALTER POLICY tenant ON accounts TO PUBLIC", &[Safeguard("policy", "public.accounts.tenant")]),
        // A permissive policy that holds for every row opens the table.
        ("CREATE POLICY open ON accounts USING (true)", &[Safeguard("policy", "public.accounts.open")]),
        ("CREATE POLICY open ON accounts FOR INSERT WITH CHECK (1 = 1)", &[Safeguard("policy", "public.accounts.open")]),
        ("CREATE POLICY open ON accounts AS PERMISSIVE USING (owner = owner)", &[Safeguard("policy", "public.accounts.open")]),
        ("DO $$ BEGIN DROP POLICY tenant ON accounts; END $$", &[Safeguard("policy", "public.accounts.tenant")]),
        // Look-alikes.
        ("ALTER TABLE accounts ENABLE ROW LEVEL SECURITY", &[NoSafeguard, NotOpaque]),
        ("ALTER TABLE accounts FORCE ROW LEVEL SECURITY", &[NoSafeguard]),
        ("CREATE POLICY tenant ON accounts USING (tenant_id = current_setting('app.tenant')::int)", &[NoSafeguard]),
        ("CREATE POLICY r ON accounts AS RESTRICTIVE USING (true)", &[NoSafeguard]),
        ("CREATE POLICY p ON accounts FOR SELECT USING (owner = current_user)", &[NoSafeguard]),
        ("ALTER POLICY tenant ON accounts RENAME TO t2", &[NoSafeguard]),
    ];
    run(T);
}

#[test]
fn rules_and_event_triggers() {
    const T: &[Case] = &[
        (
            "CREATE RULE protect AS ON DELETE TO accounts DO INSTEAD NOTHING",
            &[
                Command("CREATE RULE"),
                Safeguard("rule", "public.accounts.protect"),
            ],
        ),
        (
            "create or replace rule r as on update to app.accounts do also notify x",
            &[Safeguard("rule", "app.accounts.r")],
        ),
        (
            "DROP RULE protect ON accounts",
            &[Safeguard("rule", "public.accounts.protect")],
        ),
        (
            "ALTER TABLE accounts DISABLE RULE protect",
            &[Safeguard("rule", "public.accounts.protect")],
        ),
        (
            "ALTER TABLE accounts ENABLE REPLICA RULE protect",
            &[Safeguard("rule", "public.accounts.protect")],
        ),
        (
            "ALTER EVENT TRIGGER audit_ddl DISABLE",
            &[
                Command("ALTER EVENT TRIGGER"),
                Safeguard("event trigger", "audit_ddl"),
            ],
        ),
        (
            "alter event trigger \"Audit\" enable replica",
            &[Safeguard("event trigger", "Audit")],
        ),
        (
            "DROP EVENT TRIGGER audit_ddl",
            &[
                Command("DROP EVENT TRIGGER"),
                Safeguard("event trigger", "audit_ddl"),
            ],
        ),
        (
            "DROP EVENT TRIGGER IF EXISTS audit_ddl CASCADE",
            &[Safeguard("event trigger", "audit_ddl")],
        ),
        // Look-alikes.
        ("ALTER TABLE accounts ENABLE RULE protect", &[NoSafeguard]),
        (
            "ALTER EVENT TRIGGER audit_ddl ENABLE",
            &[NoSafeguard, NotOpaque],
        ),
        (
            "ALTER EVENT TRIGGER audit_ddl ENABLE ALWAYS",
            &[NoSafeguard],
        ),
        (
            "ALTER EVENT TRIGGER audit_ddl OWNER TO admin",
            &[NoSafeguard],
        ),
        (
            "CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl()",
            &[NoSafeguard],
        ),
    ];
    run(T);
}
