import LedgerCore
import LedgerSQLite

/// The ledger's schema: the SQL files of `migrations/`, embedded in the binary so that an
/// installed `ledgerd` needs no source tree.
public enum LedgerSchema {
  /// `PRAGMA application_id` of a ledgerd database: the ASCII bytes "LDGD".
  public static let applicationID: Int32 = 0x4C44_4744

  /// The page size of a new ledger file, in bytes.
  public static let pageSize = 8192

  /// Every migration file, by name. A new file in `migrations/` is added here too; a test
  /// fails if the two lists differ.
  static let files: [(name: String, bytes: [UInt8])] = [
    ("0001_schema.sql", PackageResources._001_schema_sql),
    ("0002_audit_views.sql", PackageResources._002_audit_views_sql),
    ("0003_reconciliation.sql", PackageResources._003_reconciliation_sql),
    ("0004_scheduler_indexes.sql", PackageResources._004_scheduler_indexes_sql),
    ("0005_checks_without_in_lists.sql", PackageResources._005_checks_without_in_lists_sql),
    ("0006_counted_attempts_index.sql", PackageResources._006_counted_attempts_index_sql),
    ("0007_ledger_identity.sql", PackageResources._007_ledger_identity_sql),
    ("0008_journal_hash_chain.sql", PackageResources._008_journal_hash_chain_sql),
    ("0009_transfer_windows.sql", PackageResources._009_transfer_windows_sql),
    ("0010_account_balances_owed.sql", PackageResources._010_account_balances_owed_sql),
    ("0011_hand_recorded_payments.sql", PackageResources._011_hand_recorded_payments_sql),
    ("0012_transfer_declarations_by_invoice.sql", PackageResources._012_transfer_declarations_by_invoice_sql),
    ("0013_subscriptions.sql", PackageResources._013_subscriptions_sql),
    ("0014_maintained_balances.sql", PackageResources._014_maintained_balances_sql),
    ("0015_processor_customers.sql", PackageResources._015_processor_customers_sql),
    ("0016_payouts.sql", PackageResources._016_payouts_sql),
    ("0017_http_api.sql", PackageResources._017_http_api_sql),
    ("0018_refund_events_index.sql", PackageResources._018_refund_events_index_sql),
  ]

  /// The embedded migrations, in order.
  public static func migrations() throws -> [Migration] {
    try files.map { file in
      guard
        let migration = Migration(
          fileName: file.name, sql: String(decoding: file.bytes, as: UTF8.self), checksum: SHA256.hex(Array(file.bytes))
        )
      else {
        throw MigrationError.badFileName(file.name)
      }
      return migration
    }
  }

  public static func migrator() throws -> Migrator {
    try Migrator(migrations: migrations(), applicationID: applicationID)
  }
}
