use super::*;
use crate::{decode_frame, encode};
use bytes::BytesMut;

fn one(buf: &mut BytesMut) -> FrontendMessage {
    let f = decode_frame(buf, 1 << 20).unwrap().unwrap();
    FrontendMessage::parse(&f).unwrap()
}

#[test]
fn query_parse_bind_execute() {
    let mut b = BytesMut::new();
    encode::query(&mut b, "select 1");
    encode::parse(&mut b, "s1", "select $1::int", &[23]);
    encode::bind(&mut b, "p1", "s1", &[Some(b"42")], &[0]);
    encode::execute(&mut b, "p1", 0);
    encode::sync(&mut b);
    assert_eq!(one(&mut b), FrontendMessage::Query("select 1".into()));
    let FrontendMessage::Parse(p) = one(&mut b) else {
        panic!()
    };
    assert_eq!((p.name.as_str(), p.param_types), ("s1", vec![23]));
    let FrontendMessage::Bind(bind) = one(&mut b) else {
        panic!()
    };
    assert_eq!(bind.params, vec![Some(Bytes::from_static(b"42"))]);
    assert!(!bind.param_is_binary(0));
    assert_eq!(
        one(&mut b),
        FrontendMessage::Execute {
            portal: "p1".into(),
            max_rows: 0
        }
    );
    assert_eq!(one(&mut b), FrontendMessage::Sync);
}

#[test]
fn lying_counts_are_errors() {
    // Bind claiming 30000 parameters in a tiny body.
    let mut body = Vec::new();
    body.extend_from_slice(b"\0\0\0\0");
    body.extend_from_slice(&30000i16.to_be_bytes());
    let mut raw = vec![b'B'];
    raw.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    raw.extend_from_slice(&body);
    let mut b = BytesMut::from(&raw[..]);
    let f = decode_frame(&mut b, 1 << 20).unwrap().unwrap();
    assert!(FrontendMessage::parse(&f).is_err());
}

#[test]
fn query_without_nul_is_error() {
    let mut b = BytesMut::from(&b"Q\0\0\0\x07abc"[..]);
    let f = decode_frame(&mut b, 100).unwrap().unwrap();
    assert!(FrontendMessage::parse(&f).is_err());
}

#[test]
fn function_call() {
    // lo_open(16385, 0x40000): two binary int arguments, binary result.
    let mut body = Vec::new();
    body.extend_from_slice(&952u32.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&2i16.to_be_bytes());
    for v in [16385i32, 0x40000] {
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&v.to_be_bytes());
    }
    body.extend_from_slice(&1i16.to_be_bytes());
    let mut b = BytesMut::new();
    b.extend_from_slice(b"F");
    b.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    b.extend_from_slice(&body);
    let FrontendMessage::FunctionCall(f) = one(&mut b) else {
        panic!()
    };
    assert_eq!((f.oid, f.args.len(), f.result_format), (952, 2, 1));
    assert!(f.arg_is_binary(1));
    // A count larger than the body is malformed, not an allocation.
    let mut b = BytesMut::from(&b"F\0\0\0\x0e\0\0\x03\xb8\0\0\x7f\xff\0\x01"[..]);
    let f = decode_frame(&mut b, 1 << 20).unwrap().unwrap();
    assert!(FrontendMessage::parse(&f).is_err());
}
