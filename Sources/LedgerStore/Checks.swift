import Foundation
import LedgerCore
import LedgerSQLite

/// One thing `ledgerd check` found wrong.
public struct Finding: Codable, Sendable, Equatable {
  /// The check that failed (`journal_balanced`).
  public let check: String
  public let detail: String
}

/// The outcome of `ledgerd check`.
public struct CheckReport: Codable, Sendable {
  public let sqliteVersion: String
  /// Whether ledgerd's protection against the WAL-reset bug is on for this file.
  public var writeDiscipline: WriteDisciplineReport
  public let checksRun: [String]
  public let findings: [Finding]
  public var ok: Bool { findings.isEmpty }
}

/// The facts behind "write discipline on" in `ledgerd check` (SPEC 9).
public struct WriteDisciplineReport: Codable, Sendable {
  /// Every ledgerd write and checkpoint on this file takes `lockFile`, automatic
  /// checkpoints are off, nothing is memory-mapped, and the file is in WAL mode.
  public let active: Bool
  /// The lock file every write transaction and checkpoint takes (`flock`).
  public let lockFile: String
  /// The linked library carries the WAL-reset bug (3.7.0 through 3.51.2): the discipline is needed.
  public let walResetBugInLibrary: Bool
  public let journalMode: String
  /// ledgerd's connections' `wal_autocheckpoint` (0: only explicit checkpoints, under the lock).
  public let walAutocheckpoint: Int64
  public let mmapSize: Int64
  /// Whether `ledgerd serve` holds this file's instance lock (set by the command line).
  public var daemonRunning: Bool?
}

extension LedgerStore {
  /// How this binary's connections treat the file, as seen from this connection.
  public func writeDisciplineReport() throws -> WriteDisciplineReport {
    let journalMode = try db.scalarText("PRAGMA journal_mode")?.lowercased() ?? "unknown"
    let autocheckpoint = try db.scalarInt("PRAGMA wal_autocheckpoint") ?? -1
    let mmap = try db.scalarInt("PRAGMA mmap_size") ?? -1
    let lockFile = WriteLock.lockPath(forDatabase: db.path) ?? db.path + ".lock"
    return WriteDisciplineReport(
      active: WriteDiscipline().lock && journalMode == "wal" && autocheckpoint == 0 && mmap == 0,
      lockFile: lockFile, walResetBugInLibrary: SQLiteVersion.hasWALResetBug(Connection.libraryVersion),
      journalMode: journalMode, walAutocheckpoint: autocheckpoint, mmapSize: mmap, daemonRunning: nil)
  }

  /// The invariants of the ledger, each a query that returns one `detail` per violation.
  /// Adding an invariant is adding a row here.
  static let invariants: [(name: String, sql: String)] = [
    (
      "journal_entry_balanced",
      """
      SELECT 'entry ' || entry_id || ' ' || currency || ' is off by ' || (sum(debit_minor) - sum(credit_minor)) || ' minor units' AS detail
      FROM journal_lines GROUP BY entry_id, currency HAVING sum(debit_minor) <> sum(credit_minor)
      """
    ),
    (
      "journal_entry_has_lines",
      """
      SELECT 'entry ' || e.id || ' has ' || count(l.id) || ' lines' AS detail
      FROM journal_entries e LEFT JOIN journal_lines l ON l.entry_id = e.id GROUP BY e.id HAVING count(l.id) < 2
      """
    ),
    (
      // From the journal itself: `v_trial_balance` reads the running balances, which
      // `ledger_balances_match_journal` holds to the journal.
      "trial_balance_zero",
      """
      SELECT currency || ' debits ' || sum(debit_minor) || ' differ from credits ' || sum(credit_minor) AS detail
      FROM journal_lines GROUP BY currency HAVING sum(debit_minor) <> sum(credit_minor)
      """
    ),
    (
      // The running balances (0014_maintained_balances.sql) against the journal added up
      // again from its first line: a row changed, added or removed by hand, or a line
      // written without its balance, names its ledger account, currency and customer.
      "ledger_balances_match_journal",
      """
      SELECT ledger_account || ' ' || currency
             || CASE WHEN account_id = 0 THEN ' (no customer)' ELSE ' of account ' || account_id END
             || ': the running balance has '
             || CASE WHEN kept THEN 'debits ' || kept_debits || ', credits ' || kept_credits ELSE 'no row' END
             || ' but the journal''s lines add up to '
             || CASE WHEN posted THEN 'debits ' || journal_debits || ', credits ' || journal_credits ELSE 'nothing' END
             AS detail
      FROM (
        SELECT account_id, currency, ledger_account, max(posted) AS posted, max(kept) AS kept,
               sum(journal_debits) AS journal_debits, sum(journal_credits) AS journal_credits,
               sum(kept_debits) AS kept_debits, sum(kept_credits) AS kept_credits
        FROM (
          SELECT CASE WHEN ledger_account = 'receivable' OR ledger_account = 'customer_credit'
                      OR ledger_account = 'bad_debt' THEN coalesce(account_id, 0) ELSE 0 END AS account_id,
                 currency, ledger_account, 1 AS posted, 0 AS kept,
                 debit_minor AS journal_debits, credit_minor AS journal_credits, 0 AS kept_debits, 0 AS kept_credits
          FROM journal_lines
          UNION ALL
          SELECT account_id, currency, ledger_account, 0, 1, 0, 0, debits_minor, credits_minor FROM ledger_balances
        )
        GROUP BY account_id, currency, ledger_account
      )
      WHERE NOT posted OR NOT kept OR journal_debits <> kept_debits OR journal_credits <> kept_credits
      ORDER BY account_id, currency, ledger_account
      """
    ),
    (
      "invoice_total_matches_lines",
      """
      SELECT i.number || ' total ' || i.total_minor || ' but lines sum to ' || coalesce(sum(l.amount_minor), 0) AS detail
      FROM invoices i LEFT JOIN invoice_lines l ON l.invoice_id = i.id
      GROUP BY i.id HAVING coalesce(sum(l.amount_minor), 0) <> i.total_minor
      """
    ),
    (
      "invoice_not_overpaid",
      """
      SELECT number || ' has ' || paid_minor || ' allocated against a total of ' || total_minor AS detail
      FROM v_invoice_balances WHERE paid_minor > total_minor
      """
    ),
    (
      "paid_invoice_fully_paid",
      """
      SELECT number || ' is paid but only ' || paid_minor || ' of ' || total_minor || ' is allocated' AS detail
      FROM v_invoice_balances WHERE status = 'paid' AND paid_minor <> total_minor
      """
    ),
    (
      "invoice_receivable_matches_due",
      """
      SELECT b.number || ' (' || b.status || ') has a receivable of ' || coalesce(j.receivable, 0)
             || ' in the journal but ' || CASE WHEN b.status = 'open' THEN b.due_minor ELSE 0 END || ' due' AS detail
      FROM v_invoice_balances b
      LEFT JOIN (SELECT invoice_id, sum(debit_minor) - sum(credit_minor) AS receivable FROM journal_lines
                 WHERE ledger_account = 'receivable' GROUP BY invoice_id) j ON j.invoice_id = b.invoice_id
      WHERE coalesce(j.receivable, 0) <> CASE WHEN b.status = 'open' THEN b.due_minor ELSE 0 END
      """
    ),
    (
      "invoice_issue_posted",
      """
      SELECT i.number || ' has no invoice_issued journal entry' AS detail FROM invoices i
      WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.invoice_id = i.id AND e.kind = 'invoice_issued')
      UNION ALL
      SELECT i.number || ' is void but its issue was not reversed' FROM invoices i
      WHERE i.status = 'void' AND NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.invoice_id = i.id AND e.kind = 'invoice_voided')
      """
    ),
    (
      "invoice_paid_once_by_card",
      """
      SELECT i.number || ' was paid by ' || count(*) || ' successful charges' AS detail
      FROM charge_attempt_invoices ci JOIN charge_attempts c ON c.id = ci.attempt_id JOIN invoices i ON i.id = ci.invoice_id
      WHERE c.status = 'succeeded' GROUP BY ci.invoice_id HAVING count(*) > 1
      """
    ),
    (
      "payment_allocations_within_amount",
      """
      SELECT 'payment ' || p.id || ' of ' || p.amount_minor || ' has ' || sum(a.amount_minor) || ' allocated' AS detail
      FROM payments p JOIN payment_allocations a ON a.payment_id = p.id
      GROUP BY p.id HAVING sum(a.amount_minor) > p.amount_minor
      """
    ),
    (
      "default_card_present",
      """
      SELECT 'account ' || account_id || ' has an active card but no default card' AS detail FROM cards
      WHERE status = 'active' GROUP BY account_id
      HAVING NOT EXISTS (SELECT 1 FROM cards d WHERE d.account_id = cards.account_id AND d.is_default = 1)
      """
    ),
    (
      "past_due_has_dunning_invoice",
      """
      SELECT 'account ' || a.id || ' is past_due without an open invoice in dunning' AS detail FROM accounts a
      WHERE a.status = 'past_due' AND NOT EXISTS
        (SELECT 1 FROM invoices i WHERE i.account_id = a.id AND i.status = 'open' AND i.dunning_started_at IS NOT NULL)
      """
    ),
    (
      "bank_line_payment_consistent",
      """
      SELECT 'bank line ' || b.id || ' is matched but has ' || count(p.id) || ' payments' AS detail
      FROM bank_statement_lines b LEFT JOIN payments p ON p.bank_line_id = b.id
      WHERE b.match_status = 'matched' GROUP BY b.id HAVING count(p.id) <> CASE WHEN b.match_rule = 'payout' THEN 0 ELSE 1 END
      UNION ALL
      SELECT 'payment ' || p.id || ' comes from bank line ' || b.id || ', which is ' || b.match_status
      FROM payments p JOIN bank_statement_lines b ON b.id = p.bank_line_id
      WHERE b.match_status <> 'matched' OR b.direction <> 'credit' OR b.amount_minor <> p.amount_minor OR b.currency <> p.currency
      """
    ),
    (
      // A payout (0016_payouts.sql) is posted once, by a `payout` entry that puts its amount
      // in the bank, and arrives on at most one bank line: a matched credit of its amount
      // and currency, by the rule `payout`; a reversed payout is never matched.
      "payout_posted_and_matched_once",
      """
      SELECT 'payout ' || p.payout_id || ' of ' || p.amount_minor || ' ' || p.currency || ' has entry ' || p.entry_id
             || ', which is not a payout putting that amount in the bank' AS detail
      FROM processor_payouts p
      WHERE NOT EXISTS (SELECT 1 FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
                        WHERE e.id = p.entry_id AND e.kind = 'payout' AND l.ledger_account = 'bank'
                          AND l.debit_minor = p.amount_minor AND l.currency = p.currency)
      UNION ALL
      SELECT 'payout ' || p.payout_id || ' is matched to bank line ' || p.bank_line_id
             || ', which is not a matched credit of the same amount by the rule payout'
      FROM processor_payouts p JOIN bank_statement_lines b ON b.id = p.bank_line_id
      WHERE b.match_status <> 'matched' OR b.match_rule IS NOT 'payout' OR b.direction <> 'credit'
        OR b.amount_minor <> p.amount_minor OR b.currency <> p.currency
      UNION ALL
      SELECT 'bank line ' || b.id || ' is matched to a payout that no payout names'
      FROM bank_statement_lines b
      WHERE b.match_rule = 'payout' AND b.match_status = 'matched'
        AND NOT EXISTS (SELECT 1 FROM processor_payouts p WHERE p.bank_line_id = b.id)
      """
    ),
    (
      "amounts_within_bound",
      // Money.maximumMinorUnits: what every command refuses beyond, so that no sum overflows.
      """
      SELECT 'plan ' || code || ' is priced ' || price_minor || ' minor units' AS detail FROM plans WHERE price_minor > 100000000000
      UNION ALL SELECT 'add-on ' || id || ' is priced ' || price_minor || ' minor units' FROM account_addons WHERE price_minor > 100000000000
      UNION ALL SELECT number || ' totals ' || total_minor || ' minor units' FROM invoices WHERE total_minor > 100000000000
      UNION ALL SELECT 'invoice line ' || id || ' is ' || amount_minor || ' minor units' FROM invoice_lines
        WHERE amount_minor > 100000000000 OR unit_amount_minor > 100000000000
      UNION ALL SELECT 'payment ' || id || ' is ' || amount_minor || ' minor units' FROM payments WHERE amount_minor > 100000000000
      UNION ALL SELECT 'bank line ' || id || ' is ' || amount_minor || ' minor units' FROM bank_statement_lines WHERE amount_minor > 100000000000
      UNION ALL SELECT 'transfer declaration ' || id || ' is ' || amount_minor || ' minor units' FROM transfer_declarations
        WHERE amount_minor > 100000000000
      UNION ALL SELECT 'journal line ' || id || ' is ' || max(debit_minor, credit_minor) || ' minor units' FROM journal_lines
        WHERE debit_minor > 100000000000 OR credit_minor > 100000000000
      """
    ),
    (
      "subscription_per_account",
      """
      SELECT 'account ' || a.id || ' has no subscription row' AS detail FROM accounts a
      WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = a.id)
      UNION ALL
      SELECT 'account ' || a.id || ' renews at ' || s.renew_at || ' but is ' ||
        CASE WHEN a.status = 'closed' THEN 'closed' WHEN s.billing = 'manual' THEN 'invoiced by hand' ELSE 'on a free plan' END
      FROM subscriptions s JOIN accounts a ON a.id = s.account_id JOIN plans p ON p.id = a.plan_id
      WHERE s.renew_at IS NOT NULL AND (a.status = 'closed' OR s.billing = 'manual' OR p.price_minor = 0)
      """
    ),
    (
      "one_open_pause_matches_flag",
      """
      SELECT i.number || CASE WHEN i.paused_at IS NULL THEN ' has an open pause but is not paused' ELSE ' is paused without an open pause' END AS detail
      FROM invoices i WHERE (i.paused_at IS NOT NULL) <> EXISTS (SELECT 1 FROM pauses p WHERE p.invoice_id = i.id AND p.resumed_at IS NULL)
      """
    ),
  ]

  /// Runs SQLite's own checks, then every ledger invariant, then scans card tokens for
  /// anything that looks like a card number.
  public func check() throws -> CheckReport {
    var findings: [Finding] = []
    var names: [String] = ["integrity_check", "foreign_key_check"]
    try read {
      for row in try db.query("PRAGMA integrity_check") {
        let text = try row.string(row.columns[0])
        if text != "ok" { findings.append(Finding(check: "integrity_check", detail: text)) }
      }
      for row in try db.query("PRAGMA foreign_key_check") {
        let table = try row.string("table")
        let rowid = (try? row.optionalInt("rowid")).flatMap { $0 }.map(String.init) ?? "?"
        findings.append(
          Finding(
            check: "foreign_key_check", detail: "\(table) row \(rowid) refers to a missing \(try row.string("parent"))")
        )
      }
      for invariant in Self.invariants {
        names.append(invariant.name)
        do {
          for row in try db.query(invariant.sql) {
            findings.append(Finding(check: invariant.name, detail: try row.string("detail")))
          }
        } catch let error as SQLiteError where !error.isBusy {
          // A sum beyond Int64 (amounts written past ledgerd's bound, by an older binary or
          // by hand) is a finding, not a failure of the check.
          findings.append(Finding(check: invariant.name, detail: "could not be computed: \(error.message)"))
        }
      }
      names.append("no_card_numbers_stored")
      findings += try cardNumberFindings()
      names.append("journal_hash_chain")
      if let broken = try verifyJournalChain().firstBreak {
        findings.append(Finding(check: "journal_hash_chain", detail: broken))
      }
    }
    return CheckReport(
      sqliteVersion: Connection.libraryVersion, writeDiscipline: try writeDisciplineReport(), checksRun: names,
      findings: findings)
  }

  /// The text columns a card number could have been typed or imported into, by table: the
  /// tokens, everything operators and customers write, what statements and processor
  /// reports bring, and what the ledger derives from them (events, messages, memos).
  /// Identifiers ledgerd makes or matches on (line keys, bank references, IBANs, charge
  /// ids) are not read: a long number there is not a card number typed by someone.
  static let textColumns: [(table: String, columns: [String])] = [
    ("plans", ["name"]),
    ("accounts", ["email", "name"]),
    ("account_addons", ["description", "removed_reason"]),
    ("cards", ["token", "postal_code"]),
    ("invoices", ["void_reason"]),
    ("invoice_lines", ["description"]),
    ("payments", ["reference"]),
    ("bank_statement_lines", ["reference", "remittance", "counterparty_name", "dismiss_reason", "note"]),
    ("pauses", ["proof"]),
    ("transfer_declarations", ["reference"]),
    ("events", ["reason", "data"]),
    ("outbox", ["data", "last_error"]),
    ("journal_entries", ["memo"]),
    ("processor_report_rows", ["detail"]),
  ]

  /// Every stored text that looks like it holds a card number (`CardNumberText`), named by
  /// table, row and column with the number masked.
  func cardNumberFindings() throws -> [Finding] {
    var findings: [Finding] = []
    for (table, columns) in Self.textColumns {
      // Only rows with a digit are read into Swift, which counts them (a GLOB pattern of 13
      // digits would cost SQLite's matcher time that grows with every '*').
      let candidates = columns.map { "\($0) GLOB '*[0-9]*'" }
      let sql =
        "SELECT rowid AS rowid, \(columns.joined(separator: ", ")) FROM \(table) WHERE \(candidates.joined(separator: " OR "))"
      // Streamed: the events and messages of a large book are never all in memory at once.
      try db.forEachRow(sql) { row in
        for column in columns {
          guard let text = try row.optionalString(column), let found = CardNumberText.describeFirst(in: text) else {
            continue
          }
          findings.append(
            Finding(
              check: "no_card_numbers_stored",
              detail:
                "\(table) row \(try row.int("rowid")) column \(column) holds what looks like a card number (\(found))"))
        }
      }
    }
    return findings
  }

  /// Copies the ledger to `destination` with SQLite's online backup API, through a temporary
  /// file renamed into place once the copy has passed `integrity_check`.
  public func backup(to destination: String) throws -> Int64 {
    let fm = FileManager.default
    guard !fm.fileExists(atPath: destination) else {
      throw InputError(field: "FILE", rule: "\(destination) already exists; a backup never overwrites a file")
    }
    let temporary = destination + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
    try? fm.removeItem(atPath: temporary)
    do {
      try db.backup(to: temporary)
      // Verify the copy, and make it a self-contained single file (rollback journal, not
      // WAL), closing it before it is renamed into place.
      let pages: Int64 = try {
        // A new private file that nothing else opens: no write lock (nor lock file) for it.
        var options = ConnectionOptions(readOnly: false, create: false)
        options.discipline.lock = false
        let copy = try Connection(path: temporary, options: options)
        _ = try copy.scalarText("PRAGMA journal_mode = DELETE")
        let verdict = try copy.scalarText("PRAGMA integrity_check")
        guard verdict == "ok", try copy.applicationID() == LedgerSchema.applicationID else {
          throw SQLiteError(
            extendedCode: 11, message: "the backup copy failed its integrity check: \(verdict ?? "no answer")")
        }
        return try copy.scalarInt("PRAGMA page_count") ?? 0
      }()
      try fm.moveItem(atPath: temporary, toPath: destination)
      return pages
    } catch {
      try? fm.removeItem(atPath: temporary)
      throw error
    }
  }
}
