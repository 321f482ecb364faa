//! Session changes: role switches, gatehouse.* settings, search_path tracking.

use crate::harness::{run, Case, E::*};

#[test]
fn role_switches() {
    const T: &[Case] = &[
        ("SET ROLE postgres", &[Class("session"), RoleSwitch]),
        ("set role 'postgres'", &[RoleSwitch]),
        ("SET LOCAL ROLE admin", &[RoleSwitch]),
        ("RESET ROLE", &[Command("RESET"), RoleSwitch]),
        ("SET SESSION AUTHORIZATION bob", &[RoleSwitch]),
        ("SET SESSION AUTHORIZATION DEFAULT", &[RoleSwitch]),
        ("RESET ALL", &[RoleSwitch, Gatehouse]),
        (
            "DISCARD ALL",
            &[Command("DISCARD ALL"), RoleSwitch, Gatehouse],
        ),
        (
            "SELECT set_config('role', 'postgres', false)",
            &[RoleSwitch],
        ),
        (
            "SELECT set_config('ROLE', 'postgres', false)",
            &[RoleSwitch],
        ),
    ];
    run(T);
}

#[test]
fn gatehouse_settings() {
    const T: &[Case] = &[
        (
            "SET gatehouse.identity = 'alice'",
            &[Gatehouse, Setting("gatehouse.identity")],
        ),
        ("SET \"gatehouse\".identity TO 'alice'", &[Gatehouse]),
        ("SET \"GateHouse\".\"Identity\" TO 'alice'", &[Gatehouse]),
        ("SET LOCAL gatehouse.groups = 'admins'", &[Gatehouse]),
        ("RESET gatehouse.identity", &[Gatehouse]),
        (
            "SELECT set_config('gatehouse.identity', 'alice', false)",
            &[Gatehouse, Class("read")],
        ),
        (
            "SELECT SET_CONFIG('GATEHOUSE.identity', 'alice', true)",
            &[Gatehouse],
        ),
        (
            "SELECT set_config('gatehouse.identity'::text, 'alice', false)",
            &[Gatehouse],
        ),
        (
            "SELECT 1 FROM t WHERE set_config('gatehouse.identity', 'a', false) IS NOT NULL",
            &[Gatehouse],
        ),
        (
            "SELECT * FROM (SELECT set_config('gatehouse.x', 'a', false)) s",
            &[Gatehouse],
        ),
        (
            "ALTER SYSTEM SET gatehouse.identity = 'x'",
            &[Gatehouse, AlterSystem],
        ),
    ];
    run(T);
}

#[test]
fn search_path_changes() {
    const T: &[Case] = &[
        (
            "SET search_path TO app, public",
            &[SearchPath(&["app", "public"]), Benign],
        ),
        (
            "SET search_path = \"$user\", public",
            &[SearchPath(&["$user", "public"])],
        ),
        ("SET SCHEMA 'app'", &[SearchPath(&["app"])]),
        ("RESET search_path", &[SearchPath(&[])]),
        ("SET search_path TO DEFAULT", &[SearchPath(&[])]),
        (
            "SELECT set_config('search_path', 'a, \"B\"', false)",
            &[SearchPath(&["a", "B"])],
        ),
    ];
    run(T);
}
