-- Reconciliation: how each bank line was matched, what staff must know about it, the payer
-- identities learned from matched lines, and the processor's settlement report rows.

-- How a line was matched ('reference': the invoice's RF reference in the remittance
-- information; 'payer_amount': a known payer and the exact amount of their single open
-- transfer invoice; 'staff': `ledgerd reconcile assign`), and a note in words for staff
-- (why it is unmatched, a partial or over-payment, the credit line a reversal undoes).
ALTER TABLE bank_statement_lines ADD COLUMN match_rule TEXT
  CHECK (match_rule IS NULL OR match_rule IN ('reference', 'payer_amount', 'staff'));
ALTER TABLE bank_statement_lines ADD COLUMN note TEXT;
-- The bank's own reference of the entry (camt.053 AcctSvcrRef), when it gave one.
ALTER TABLE bank_statement_lines ADD COLUMN account_servicer_ref TEXT;
-- Who dismissed the line, and when (the reason is dismiss_reason).
ALTER TABLE bank_statement_lines ADD COLUMN dismissed_at TEXT;
CREATE INDEX bank_statement_lines_amount ON bank_statement_lines (amount_minor, currency, direction);

-- A payer is "known" by the IBAN or name on a line that was matched to their account (by
-- reference or by staff). The account's own name is known without an entry here.
CREATE TABLE payer_identities (
  kind        TEXT NOT NULL CHECK (kind IN ('iban', 'name')),
  value       TEXT NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
  account_id  INTEGER NOT NULL REFERENCES accounts (id),
  learned_from_line INTEGER REFERENCES bank_statement_lines (id),
  learned_at  TEXT NOT NULL,
  PRIMARY KEY (kind, value, account_id)
) STRICT, WITHOUT ROWID;

-- Rows of the processor's settlement (itemized payout) report, one per balance transaction:
-- importing a report twice records nothing twice.
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
  -- 'matched': the ledger has it as succeeded with the same amount; 'recorded': settled by
  -- the processor but not succeeded in the ledger, now recorded as a payment (flagged);
  -- 'mismatch': amount or currency differ; 'unknown': no charge attempt has this key;
  -- 'duplicate': a second charge row for an attempt another row already settled (nothing
  -- posted); 'adjustment': a refund, dispute, chargeback… naming a charge the ledger knows
  -- (a finding, nothing posted); 'other': payouts and rows naming no known charge, kept for
  -- the record.
  outcome            TEXT NOT NULL CHECK (outcome IN ('matched', 'recorded', 'mismatch', 'unknown', 'duplicate', 'adjustment', 'other')),
  detail             TEXT,
  fee_entry_id       INTEGER REFERENCES journal_entries (id),
  imported_at        TEXT NOT NULL,
  CHECK (gross_minor - fee_minor = net_minor)
) STRICT;
CREATE INDEX processor_report_rows_key ON processor_report_rows (idempotency_key);
CREATE INDEX processor_report_rows_attempt ON processor_report_rows (attempt_id);
