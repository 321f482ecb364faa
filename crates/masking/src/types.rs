//! PostgreSQL type OIDs this crate knows and the masking class each falls into. OIDs are the
//! fixed ones of `pg_type.dat` in the PostgreSQL sources (built-in types never change OID);
//! extension types (citext, …) have per-database OIDs and reach us only via `treat_as_text`.

/// Built-in type OIDs (PostgreSQL `src/include/catalog/pg_type.dat`).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// How a column type is masked; see the table in the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeClass {
    /// Character data: keeps its type, masks are text.
    Text,
    /// Two-, four- or eight-byte integers (binary: big-endian two's complement).
    Int2,
    Int4,
    Int8,
    /// IEEE floats (binary: big-endian).
    Float4,
    Float8,
    Numeric,
    Uuid,
    Bytea,
    Json,
    /// jsonb: binary format is a version byte (1) followed by the JSON text.
    Jsonb,
    /// Types with no meaningful constant or partial form (bool, date/time, arrays, unknown
    /// OIDs): masked to NULL, which every column can carry on the wire.
    NullOnly,
}

impl TypeClass {
    /// The class of a type OID; `treat_as_text` upgrades otherwise unknown OIDs to text.
    pub fn of(type_oid: u32, treat_as_text: bool) -> TypeClass {
        match type_oid {
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => TypeClass::Text,
            oid::INT2 => TypeClass::Int2,
            oid::INT4 => TypeClass::Int4,
            oid::INT8 => TypeClass::Int8,
            oid::FLOAT4 => TypeClass::Float4,
            oid::FLOAT8 => TypeClass::Float8,
            oid::NUMERIC => TypeClass::Numeric,
            oid::UUID => TypeClass::Uuid,
            oid::BYTEA => TypeClass::Bytea,
            oid::JSON => TypeClass::Json,
            oid::JSONB => TypeClass::Jsonb,
            // Known types that must never be reinterpreted as text, even when asked: their
            // binary format is not text, and a text mask would corrupt the stream.
            oid::BOOL
            | oid::DATE
            | oid::TIME
            | oid::TIMETZ
            | oid::TIMESTAMP
            | oid::TIMESTAMPTZ
            | oid::INTERVAL => TypeClass::NullOnly,
            _ if treat_as_text => TypeClass::Text,
            _ => TypeClass::NullOnly,
        }
    }

    /// Whether masked values of this class are JSON numbers when embedded in JSON.
    pub(crate) fn is_number(self) -> bool {
        matches!(
            self,
            TypeClass::Int2
                | TypeClass::Int4
                | TypeClass::Int8
                | TypeClass::Float4
                | TypeClass::Float8
                | TypeClass::Numeric
        )
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TypeClass::Text => "text",
            TypeClass::Int2 => "int2",
            TypeClass::Int4 => "int4",
            TypeClass::Int8 => "int8",
            TypeClass::Float4 => "float4",
            TypeClass::Float8 => "float8",
            TypeClass::Numeric => "numeric",
            TypeClass::Uuid => "uuid",
            TypeClass::Bytea => "bytea",
            TypeClass::Json => "json",
            TypeClass::Jsonb => "jsonb",
            TypeClass::NullOnly => "other",
        }
    }
}
