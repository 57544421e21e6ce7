-- ledgerd-migration: rebuilds-tables
--
-- Payouts: the processor paying its balance out to the host's bank account.
--
-- A payout row of the processor's report is posted as a journal entry of a new kind,
-- `payout` (bank / processor clearing), and a payout that fails (`payout_reversal`) is
-- reversed by a `reversal` entry. `processor_payouts` keeps one row per payout posted: the
-- entry that posted it, the entry that reversed it, and the bank-statement line that is its
-- arrival in the bank (matched once: the column is unique). A bank line matched to a payout
-- has the rule `payout` and no payment.
--
-- Three tables are created again with a wider CHECK, as 0005 did (its header says how the
-- migrator runs such a file): journal_entries (kind `payout`), processor_report_rows (the
-- outcomes of the rows that are now posted or reported) and bank_statement_lines (the match
-- rule `payout`). Every row is copied as it is, ids included, so the journal's hash chain
-- (journal_hashes, 0008) and the running balances (ledger_balances, 0014), which name
-- entries by id or do not name them at all, stay as they were; the append-only triggers and
-- the indexes are created again.

-- journal_entries
ALTER TABLE journal_entries RENAME TO journal_entries__before_0016;
CREATE TABLE journal_entries (
  id                INTEGER PRIMARY KEY,
  at                TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK ((kind = 'invoice_issued' OR kind = 'invoice_voided' OR kind = 'card_payment' OR kind = 'transfer_payment' OR kind = 'write_off' OR kind = 'credit_applied' OR kind = 'refund' OR kind = 'processor_fee' OR kind = 'reversal' OR kind = 'payout')),
  memo              TEXT NOT NULL,
  invoice_id        INTEGER REFERENCES invoices (id),
  payment_id        INTEGER REFERENCES payments (id)
) STRICT;
INSERT INTO journal_entries SELECT * FROM journal_entries__before_0016;
DROP TABLE journal_entries__before_0016;
CREATE INDEX journal_entries_invoice ON journal_entries (invoice_id);
CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only: post a reversing entry instead'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only: post a reversing entry instead'); END;

-- processor_report_rows
ALTER TABLE processor_report_rows RENAME TO processor_report_rows__before_0016;
CREATE TABLE processor_report_rows (
  balance_transaction_id TEXT PRIMARY KEY CHECK (length(balance_transaction_id) BETWEEN 1 AND 255),
  created            TEXT NOT NULL,
  currency           TEXT NOT NULL CHECK (length(currency) = 3),
  gross_minor        INTEGER NOT NULL,
  fee_minor          INTEGER NOT NULL,
  net_minor          INTEGER NOT NULL,
  reporting_category TEXT NOT NULL,
  source_id          TEXT,
  payment_intent_id  TEXT,
  idempotency_key    TEXT,
  attempt_id         INTEGER REFERENCES charge_attempts (id),
  -- Charge rows: 'matched' (the ledger has it as succeeded with the same amount),
  -- 'recorded' (settled by the processor but not succeeded in the ledger, now recorded as a
  -- payment, flagged), 'mismatch' (amount or currency differ, or charged twice), 'unknown'
  -- (no charge attempt has this key or reference), 'duplicate' (a second charge row for an
  -- attempt another row already settled: nothing posted).
  -- Other rows: 'adjustment' (a refund, dispute… naming a charge the ledger knows: a finding,
  -- nothing posted); 'payout' (posted: bank / processor clearing); 'payout_reversal' (a
  -- failed payout, its entry reversed); 'fee' (the processor's own fee, posted: processor
  -- fees / processor clearing); 'unposted' (a movement of the processor's balance the ledger
  -- does not post, such as a transfer or a reserve: a finding for staff); 'unknown_category'
  -- (a category the ledger does not know: a finding, nothing posted); 'payout_problem' (a
  -- payout posted twice under another balance transaction, or a reversal naming no payout
  -- the ledger can reverse: a finding, nothing posted); 'other' (refunds and disputes naming
  -- no known charge, kept for the record).
  outcome            TEXT NOT NULL CHECK ((outcome = 'matched' OR outcome = 'recorded' OR outcome = 'mismatch' OR outcome = 'unknown' OR outcome = 'duplicate' OR outcome = 'adjustment' OR outcome = 'other' OR outcome = 'payout' OR outcome = 'payout_reversal' OR outcome = 'fee' OR outcome = 'unposted' OR outcome = 'unknown_category' OR outcome = 'payout_problem')),
  detail             TEXT,
  fee_entry_id       INTEGER REFERENCES journal_entries (id),
  imported_at        TEXT NOT NULL,
  CHECK (gross_minor - fee_minor = net_minor)
) STRICT;
INSERT INTO processor_report_rows SELECT * FROM processor_report_rows__before_0016;
DROP TABLE processor_report_rows__before_0016;
CREATE INDEX processor_report_rows_key ON processor_report_rows (idempotency_key);
CREATE INDEX processor_report_rows_attempt ON processor_report_rows (attempt_id);

-- bank_statement_lines
ALTER TABLE bank_statement_lines RENAME TO bank_statement_lines__before_0016;
CREATE TABLE bank_statement_lines (
  id               INTEGER PRIMARY KEY,
  line_key         TEXT NOT NULL UNIQUE CHECK (length(line_key) BETWEEN 1 AND 300),
  source           TEXT NOT NULL CHECK (source IN ('camt053', 'csv')),
  statement_id     TEXT,
  booking_date     TEXT CHECK (booking_date IS NULL OR date(booking_date) IS booking_date),
  value_date       TEXT CHECK (value_date IS NULL OR date(value_date) IS value_date),
  amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  direction        TEXT NOT NULL CHECK (direction IN ('credit', 'debit')),
  is_reversal      INTEGER NOT NULL DEFAULT 0 CHECK (is_reversal IN (0, 1)),
  booking_status   TEXT NOT NULL CHECK (booking_status IN ('booked', 'pending')),
  reference        TEXT,
  remittance       TEXT,
  counterparty_name TEXT,
  counterparty_iban TEXT,
  match_status     TEXT NOT NULL DEFAULT 'unmatched' CHECK ((match_status = 'matched' OR match_status = 'unmatched' OR match_status = 'dismissed' OR match_status = 'ignored')),
  invoice_id       INTEGER REFERENCES invoices (id),
  dismiss_reason   TEXT,
  imported_at      TEXT NOT NULL, match_rule TEXT
  CHECK (match_rule IS NULL OR (match_rule = 'reference' OR match_rule = 'payer_amount' OR match_rule = 'staff' OR match_rule = 'payout')), note TEXT, account_servicer_ref TEXT, dismissed_at TEXT,
  CHECK ((match_status = 'dismissed') = (dismiss_reason IS NOT NULL))
) STRICT;
INSERT INTO bank_statement_lines SELECT * FROM bank_statement_lines__before_0016;
DROP TABLE bank_statement_lines__before_0016;
CREATE INDEX bank_statement_lines_unmatched ON bank_statement_lines (id) WHERE match_status = 'unmatched';
CREATE INDEX bank_statement_lines_amount ON bank_statement_lines (amount_minor, currency, direction);

-- One row per payout posted. `payout_id` is the processor's payout (`po_…`), or the
-- balance transaction's id when the report names no payout; `amount_minor` is what reaches
-- the bank (the report's gross, negated); `arrival_date` the day the processor expects it
-- there. A reversed payout keeps its row, with the reversing entry; it is never matched.
CREATE TABLE processor_payouts (
  payout_id          TEXT PRIMARY KEY CHECK (length(payout_id) BETWEEN 1 AND 255),
  balance_transaction_id TEXT NOT NULL UNIQUE REFERENCES processor_report_rows (balance_transaction_id),
  currency           TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  amount_minor       INTEGER NOT NULL CHECK (amount_minor > 0),
  arrival_date       TEXT NOT NULL CHECK (date(arrival_date) IS arrival_date),
  entry_id           INTEGER NOT NULL UNIQUE REFERENCES journal_entries (id),
  reversal_balance_transaction_id TEXT UNIQUE REFERENCES processor_report_rows (balance_transaction_id),
  reversal_entry_id  INTEGER UNIQUE REFERENCES journal_entries (id),
  bank_line_id       INTEGER UNIQUE REFERENCES bank_statement_lines (id),
  posted_at          TEXT NOT NULL,
  matched_at         TEXT,
  CHECK ((reversal_entry_id IS NULL) = (reversal_balance_transaction_id IS NULL)),
  CHECK ((bank_line_id IS NULL) = (matched_at IS NULL)),
  CHECK (bank_line_id IS NULL OR reversal_entry_id IS NULL)
) STRICT;
-- The payouts a bank credit may be: not yet matched, not reversed, by amount.
CREATE INDEX processor_payouts_waiting ON processor_payouts (amount_minor, currency)
  WHERE bank_line_id IS NULL AND reversal_entry_id IS NULL;

-- A report row names its charge by the processor's references (`pi_…/ch_…`, `pi_…`, or a
-- charge id) when it carries no idempotency key: found through this index rather than by
-- reading every attempt.
CREATE INDEX charge_attempts_processor_ref ON charge_attempts (processor_ref) WHERE processor_ref IS NOT NULL;
