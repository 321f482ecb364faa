//! Encoders for the messages Gatehouse produces itself: errors and the authentication
//! exchange towards clients, and the startup/auth/query messages it sends upstream.

use crate::encoding::Encoding;
use bytes::{BufMut, BytesMut};

/// Writes `tag`, a length placeholder, the body from `f`, then patches the length
/// (which counts itself but not the tag).
fn framed(out: &mut BytesMut, tag: Option<u8>, f: impl FnOnce(&mut BytesMut)) {
    if let Some(t) = tag {
        out.put_u8(t);
    }
    let start = out.len();
    out.put_i32(0);
    f(out);
    let len = i32::try_from(out.len() - start).unwrap_or(i32::MAX);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}

fn cstr(out: &mut BytesMut, s: &str) {
    cbytes(out, s.as_bytes());
}

fn cbytes(out: &mut BytesMut, s: &[u8]) {
    // A NUL inside would end the string early on the peer's side; drop them.
    out.extend(s.iter().copied().filter(|&b| b != 0));
    out.put_u8(0);
}

/// StartupMessage (protocol 3.0) with the given parameters.
pub fn startup(out: &mut BytesMut, params: &[(&str, &str)]) {
    framed(out, None, |b| {
        b.put_i32(crate::startup::PROTOCOL_V3);
        for (k, v) in params {
            cstr(b, k);
            cstr(b, v);
        }
        b.put_u8(0);
    });
}

pub fn ssl_request(out: &mut BytesMut) {
    framed(out, None, |b| b.put_i32(crate::startup::SSL_REQUEST));
}

pub fn cancel_request(out: &mut BytesMut, pid: i32, key: i32) {
    framed(out, None, |b| {
        b.put_i32(crate::startup::CANCEL_REQUEST);
        b.put_i32(pid);
        b.put_i32(key);
    });
}

/// ErrorResponse (or, with severity NOTICE/WARNING, use [`notice`]).
pub fn error(
    out: &mut BytesMut,
    severity: &str,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) {
    let t = Texts {
        enc: Encoding::UTF8,
        severity,
        code,
        message,
        detail,
        hint,
    };
    fields(out, b'E', &t);
}

/// ErrorResponse with its texts in client encoding `enc` (what it cannot hold becomes `?`).
pub fn error_in(
    out: &mut BytesMut,
    enc: Encoding,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) {
    let t = Texts {
        enc,
        severity: "ERROR",
        code,
        message,
        detail,
        hint,
    };
    fields(out, b'E', &t);
}

pub fn notice(out: &mut BytesMut, code: &str, message: &str, detail: Option<&str>) {
    let t = Texts {
        enc: Encoding::UTF8,
        severity: "NOTICE",
        code,
        message,
        detail,
        hint: None,
    };
    fields(out, b'N', &t);
}

/// NoticeResponse with its texts in client encoding `enc`.
pub fn notice_in(
    out: &mut BytesMut,
    enc: Encoding,
    code: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) {
    let t = Texts {
        enc,
        severity: "NOTICE",
        code,
        message,
        detail,
        hint,
    };
    fields(out, b'N', &t);
}

/// The fields of an error or notice Gatehouse writes itself.
struct Texts<'a> {
    enc: Encoding,
    severity: &'a str,
    code: &'a str,
    message: &'a str,
    detail: Option<&'a str>,
    hint: Option<&'a str>,
}

fn fields(out: &mut BytesMut, tag: u8, t: &Texts<'_>) {
    let (severity, code, message, detail, hint) = (t.severity, t.code, t.message, t.detail, t.hint);
    framed(out, Some(tag), |b| {
        for (k, v) in [
            (b'S', severity),
            (b'V', severity),
            (b'C', code),
            (b'M', message),
        ] {
            b.put_u8(k);
            cbytes(b, &t.enc.encode_lossy(v));
        }
        for (k, v) in [(b'D', detail), (b'H', hint)] {
            if let Some(v) = v {
                b.put_u8(k);
                cbytes(b, &t.enc.encode_lossy(v));
            }
        }
        b.put_u8(0);
    });
}

pub fn auth_ok(out: &mut BytesMut) {
    framed(out, Some(b'R'), |b| b.put_i32(0));
}

pub fn auth_cleartext(out: &mut BytesMut) {
    framed(out, Some(b'R'), |b| b.put_i32(3));
}

pub fn auth_sasl(out: &mut BytesMut, mechanisms: &[&str]) {
    framed(out, Some(b'R'), |b| {
        b.put_i32(10);
        for m in mechanisms {
            cstr(b, m);
        }
        b.put_u8(0);
    });
}

pub fn auth_sasl_continue(out: &mut BytesMut, data: &[u8]) {
    framed(out, Some(b'R'), |b| {
        b.put_i32(11);
        b.put_slice(data);
    });
}

pub fn auth_sasl_final(out: &mut BytesMut, data: &[u8]) {
    framed(out, Some(b'R'), |b| {
        b.put_i32(12);
        b.put_slice(data);
    });
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    framed(out, Some(b'S'), |b| {
        cstr(b, name);
        cstr(b, value);
    });
}

/// NegotiateProtocolVersion (`v`): the newest minor version of protocol 3 supported, and the
/// protocol options (`_pq_.*`) of the startup packet that were not recognised.
pub fn negotiate_protocol_version(out: &mut BytesMut, minor: i32, unrecognised: &[&str]) {
    framed(out, Some(b'v'), |b| {
        b.put_i32(minor);
        b.put_i32(i32::try_from(unrecognised.len()).unwrap_or(i32::MAX));
        for o in unrecognised {
            cstr(b, o);
        }
    });
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, key: i32) {
    framed(out, Some(b'K'), |b| {
        b.put_i32(pid);
        b.put_i32(key);
    });
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    framed(out, Some(b'Z'), |b| b.put_u8(status));
}

/// PasswordMessage with a NUL-terminated password (cleartext or `md5…` hash).
pub fn password(out: &mut BytesMut, password: &[u8]) {
    framed(out, Some(b'p'), |b| {
        b.extend(password.iter().copied().filter(|&c| c != 0));
        b.put_u8(0);
    });
}

pub fn sasl_initial_response(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
    framed(out, Some(b'p'), |b| {
        cstr(b, mechanism);
        b.put_i32(i32::try_from(data.len()).unwrap_or(i32::MAX));
        b.put_slice(data);
    });
}

pub fn sasl_response(out: &mut BytesMut, data: &[u8]) {
    framed(out, Some(b'p'), |b| b.put_slice(data));
}

pub fn query(out: &mut BytesMut, sql: &str) {
    framed(out, Some(b'Q'), |b| cstr(b, sql));
}

pub fn parse(out: &mut BytesMut, name: &str, sql: &str, types: &[u32]) {
    framed(out, Some(b'P'), |b| {
        cstr(b, name);
        cstr(b, sql);
        b.put_i16(i16::try_from(types.len()).unwrap_or(i16::MAX));
        for t in types {
            b.put_u32(*t);
        }
    });
}

/// Describe (`kind` b'S' statement, b'P' portal).
pub fn describe(out: &mut BytesMut, kind: u8, name: &str) {
    framed(out, Some(b'D'), |b| {
        b.put_u8(kind);
        cstr(b, name);
    });
}

/// Bind with text parameters (format codes all 0) and the given result formats.
pub fn bind(out: &mut BytesMut, portal: &str, stmt: &str, params: &[Option<&[u8]>], rf: &[i16]) {
    framed(out, Some(b'B'), |b| {
        cstr(b, portal);
        cstr(b, stmt);
        b.put_i16(0);
        b.put_i16(i16::try_from(params.len()).unwrap_or(i16::MAX));
        for p in params {
            match p {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
                    b.put_slice(v);
                }
            }
        }
        b.put_i16(i16::try_from(rf.len()).unwrap_or(i16::MAX));
        for f in rf {
            b.put_i16(*f);
        }
    });
}

pub fn execute(out: &mut BytesMut, portal: &str, max_rows: i32) {
    framed(out, Some(b'E'), |b| {
        cstr(b, portal);
        b.put_i32(max_rows);
    });
}

pub fn sync(out: &mut BytesMut) {
    framed(out, Some(b'S'), |_| {});
}

/// Close of a statement (`kind` `S`) or portal (`P`).
pub fn close(out: &mut BytesMut, kind: u8, name: &str) {
    framed(out, Some(b'C'), |b| {
        b.put_u8(kind);
        cstr(b, name);
    });
}

pub fn flush(out: &mut BytesMut) {
    framed(out, Some(b'H'), |_| {});
}

pub fn terminate(out: &mut BytesMut) {
    framed(out, Some(b'X'), |_| {});
}

/// DataRow from cells (None = NULL).
pub fn data_row<'a>(out: &mut BytesMut, cells: impl ExactSizeIterator<Item = Option<&'a [u8]>>) {
    framed(out, Some(b'D'), |b| {
        b.put_i16(i16::try_from(cells.len()).unwrap_or(i16::MAX));
        for c in cells {
            match c {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
                    b.put_slice(v);
                }
            }
        }
    });
}

/// RowDescription, for tests and for answers Gatehouse builds itself.
pub fn row_description(out: &mut BytesMut, fields: &[crate::backend::FieldDesc]) {
    framed(out, Some(b'T'), |b| {
        b.put_i16(i16::try_from(fields.len()).unwrap_or(i16::MAX));
        for f in fields {
            cstr(b, &f.name);
            b.put_u32(f.table_oid);
            b.put_i16(f.column_attr);
            b.put_u32(f.type_oid);
            b.put_i16(f.type_len);
            b.put_i32(f.type_mod);
            b.put_i16(f.format);
        }
    });
}

/// ErrorResponse (`E`) or NoticeResponse (`N`) from raw fields.
pub fn fields_raw(out: &mut BytesMut, tag: u8, fields: &[(u8, Vec<u8>)]) {
    framed(out, Some(tag), |b| {
        for (k, v) in fields {
            b.put_u8(*k);
            cbytes(b, v);
        }
        b.put_u8(0);
    });
}

/// CopyData.
pub fn copy_data(out: &mut BytesMut, data: &[u8]) {
    framed(out, Some(b'd'), |b| b.put_slice(data));
}
