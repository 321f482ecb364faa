//! Command tags for statement kinds that need no walking of their own.

use pg_query::protobuf::TransactionStmtKind as T;
use pg_query::NodeEnum as N;

pub(super) fn transaction_tag(kind: i32) -> &'static str {
    match T::try_from(kind) {
        Ok(T::TransStmtBegin) => "BEGIN",
        Ok(T::TransStmtStart) => "START TRANSACTION",
        Ok(T::TransStmtCommit) => "COMMIT",
        Ok(T::TransStmtRollback) => "ROLLBACK",
        Ok(T::TransStmtSavepoint) => "SAVEPOINT",
        Ok(T::TransStmtRelease) => "RELEASE",
        Ok(T::TransStmtRollbackTo) => "ROLLBACK TO SAVEPOINT",
        Ok(T::TransStmtPrepare) => "PREPARE TRANSACTION",
        Ok(T::TransStmtCommitPrepared) => "COMMIT PREPARED",
        Ok(T::TransStmtRollbackPrepared) => "ROLLBACK PREPARED",
        _ => "TRANSACTION",
    }
}

pub(super) fn role_tag(stmt_type: i32) -> &'static str {
    use pg_query::protobuf::RoleStmtType as R;
    match R::try_from(stmt_type) {
        Ok(R::RolestmtUser) => "CREATE USER",
        Ok(R::RolestmtGroup) => "CREATE GROUP",
        _ => "CREATE ROLE",
    }
}

pub(super) fn foreign_tag(n: &N) -> &'static str {
    match n {
        N::CreateFdwStmt(_) => "CREATE FOREIGN DATA WRAPPER",
        N::AlterFdwStmt(_) => "ALTER FOREIGN DATA WRAPPER",
        N::AlterForeignServerStmt(_) => "ALTER SERVER",
        N::CreateUserMappingStmt(_) => "CREATE USER MAPPING",
        N::AlterUserMappingStmt(_) => "ALTER USER MAPPING",
        N::DropUserMappingStmt(_) => "DROP USER MAPPING",
        N::ImportForeignSchemaStmt(_) => "IMPORT FOREIGN SCHEMA",
        N::CreateSubscriptionStmt(_) => "CREATE SUBSCRIPTION",
        N::AlterSubscriptionStmt(_) => "ALTER SUBSCRIPTION",
        _ => "DROP SUBSCRIPTION",
    }
}

/// Schema statements with no facts beyond their kind (their relations and function calls
/// come from the sweep).
pub(super) fn plain_ddl_tag(n: &N) -> Option<&'static str> {
    Some(match n {
        N::CreatedbStmt(_) => "CREATE DATABASE",
        N::AlterDatabaseStmt(_) | N::AlterDatabaseRefreshCollStmt(_) => "ALTER DATABASE",
        N::AlterObjectDependsStmt(_) => "ALTER DEPENDS ON EXTENSION",
        N::AlterExtensionStmt(_) | N::AlterExtensionContentsStmt(_) => "ALTER EXTENSION",
        N::CommentStmt(_) => "COMMENT",
        N::SecLabelStmt(_) => "SECURITY LABEL",
        N::CreateSeqStmt(_) => "CREATE SEQUENCE",
        N::AlterSeqStmt(_) => "ALTER SEQUENCE",
        N::DefineStmt(_) => "CREATE OBJECT",
        N::CreateDomainStmt(_) => "CREATE DOMAIN",
        N::AlterDomainStmt(_) => "ALTER DOMAIN",
        N::CompositeTypeStmt(_) => "CREATE TYPE",
        N::CreateEnumStmt(_) => "CREATE TYPE",
        N::CreateRangeStmt(_) => "CREATE TYPE",
        N::AlterEnumStmt(_) => "ALTER TYPE",
        N::AlterTypeStmt(_) => "ALTER TYPE",
        N::CreateOpClassStmt(_) => "CREATE OPERATOR CLASS",
        N::CreateOpFamilyStmt(_) => "CREATE OPERATOR FAMILY",
        N::AlterOpFamilyStmt(_) => "ALTER OPERATOR FAMILY",
        N::AlterOperatorStmt(_) => "ALTER OPERATOR",
        N::CreateCastStmt(_) => "CREATE CAST",
        N::CreateConversionStmt(_) => "CREATE CONVERSION",
        N::CreateTransformStmt(_) => "CREATE TRANSFORM",
        N::CreateAmStmt(_) => "CREATE ACCESS METHOD",
        N::CreateStatsStmt(_) => "CREATE STATISTICS",
        N::AlterStatsStmt(_) => "ALTER STATISTICS",
        N::AlterCollationStmt(_) => "ALTER COLLATION",
        N::AlterTsdictionaryStmt(_) => "ALTER TEXT SEARCH DICTIONARY",
        N::AlterTsconfigurationStmt(_) => "ALTER TEXT SEARCH CONFIGURATION",
        N::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        N::AlterTableSpaceOptionsStmt(_) => "ALTER TABLESPACE",
        N::AlterTableMoveAllStmt(_) => "ALTER TABLE ALL IN TABLESPACE",
        N::CreatePublicationStmt(_) => "CREATE PUBLICATION",
        N::AlterPublicationStmt(_) => "ALTER PUBLICATION",
        _ => return None,
    })
}
