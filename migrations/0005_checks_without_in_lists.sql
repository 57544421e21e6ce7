-- ledgerd-migration: rebuilds-tables
--
-- The same tables, with every CHECK that listed three or more allowed values written as
-- comparisons joined by OR. SQLite evaluates `x IN ('a', 'b', 'c')` by building a temporary
-- index of the list each time a statement runs, so every insert into events, every charge
-- attempt, every journal line paid for it; `x = 'a' OR x = 'b' OR x = 'c'` allows and
-- refuses exactly the same values (NULL included) without it. Lists of two are compared
-- directly by SQLite and stay as they are.
--
-- Each table is renamed, created again under its name with the new checks, filled from
-- the old one (same columns, same order) and the old one dropped; its indexes and
-- triggers are created again. The line above makes the migrator run this with foreign
-- keys off and legacy_alter_table on, so that the rename leaves other tables' foreign
-- keys and the views pointing at the table's name, and check every foreign key before it
-- commits.

-- accounts
ALTER TABLE accounts RENAME TO accounts__before_0005;
CREATE TABLE accounts (
  id           INTEGER PRIMARY KEY,
  email        TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email GLOB '?*@?*.?*'
                                    AND email NOT GLOB ('*[' || char(1, 9, 10, 13, 32, 127) || ']*')),
  name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name NOT GLOB ('*[' || char(10, 13) || ']*')),
  locale       TEXT NOT NULL CHECK (locale IN ('fr', 'en')),
  plan_id      INTEGER NOT NULL REFERENCES plans (id),
  status       TEXT NOT NULL DEFAULT 'active' CHECK ((status = 'active' OR status = 'past_due' OR status = 'downgraded' OR status = 'closed')),
  -- The plan before a downgrade, so staff (or the restore option) can put it back.
  previous_plan_id INTEGER REFERENCES plans (id),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
) STRICT;
INSERT INTO accounts SELECT * FROM accounts__before_0005;
DROP TABLE accounts__before_0005;

-- cards
ALTER TABLE cards RENAME TO cards__before_0005;
CREATE TABLE cards (
  id           INTEGER PRIMARY KEY,
  account_id   INTEGER NOT NULL REFERENCES accounts (id),
  token        TEXT NOT NULL UNIQUE CHECK (length(token) BETWEEN 3 AND 255),
  brand        TEXT NOT NULL CHECK ((brand = 'visa' OR brand = 'mastercard' OR brand = 'amex' OR brand = 'discover' OR brand = 'jcb' OR brand = 'diners' OR brand = 'unionpay' OR brand = 'cb' OR brand = 'other')),
  last4        TEXT NOT NULL CHECK (length(last4) = 4 AND last4 NOT GLOB '*[^0-9]*'),
  exp_month    INTEGER NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
  exp_year     INTEGER NOT NULL CHECK (exp_year BETWEEN 2000 AND 2100),
  postal_code  TEXT CHECK (postal_code IS NULL OR length(postal_code) BETWEEN 1 AND 16),
  country      TEXT CHECK (country IS NULL OR (length(country) = 2 AND country NOT GLOB '*[^A-Z]*')),
  status       TEXT NOT NULL DEFAULT 'active' CHECK ((status = 'active' OR status = 'needs_update' OR status = 'removed')),
  is_default   INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  removed_at   TEXT,
  CHECK (is_default = 0 OR status <> 'removed'),
  CHECK ((status = 'removed') = (removed_at IS NOT NULL))
) STRICT;
INSERT INTO cards SELECT * FROM cards__before_0005;
DROP TABLE cards__before_0005;
CREATE UNIQUE INDEX cards_one_default ON cards (account_id) WHERE is_default = 1;
CREATE INDEX cards_account ON cards (account_id, id);
CREATE INDEX cards_default_expiry ON cards (exp_year * 12 + exp_month) WHERE is_default = 1 AND status = 'active';

-- invoices
ALTER TABLE invoices RENAME TO invoices__before_0005;
CREATE TABLE invoices (
  id                 INTEGER PRIMARY KEY,
  number             TEXT NOT NULL UNIQUE CHECK (number GLOB 'INV-[0-9][0-9][0-9][0-9][0-9][0-9]*'),
  account_id         INTEGER NOT NULL REFERENCES accounts (id),
  currency           TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  total_minor        INTEGER NOT NULL CHECK (total_minor > 0),
  status             TEXT NOT NULL DEFAULT 'open' CHECK ((status = 'open' OR status = 'paid' OR status = 'void' OR status = 'uncollectible')),
  collection_method  TEXT NOT NULL CHECK (collection_method IN ('card', 'transfer')),
  -- ISO 11649 creditor reference the customer quotes on a transfer.
  payment_reference  TEXT UNIQUE CHECK (payment_reference IS NULL OR payment_reference GLOB 'RF[0-9][0-9]?*'),
  issue_date         TEXT NOT NULL CHECK (date(issue_date) IS issue_date),
  due_date           TEXT NOT NULL CHECK (date(due_date) IS due_date),
  -- Dunning state: when the first charge failed (card) or the invoice became overdue
  -- (transfer), and when grace ends.
  dunning_started_at TEXT,
  grace_deadline     TEXT,
  -- Set while a "payment not registered" report pauses collection (see pauses); the
  -- total time spent paused shifts the dunning clock.
  paused_at          TEXT,
  paused_seconds     INTEGER NOT NULL DEFAULT 0 CHECK (paused_seconds >= 0),
  -- The scheduler's bookkeeping: the last charge round and its failure, retries and
  -- reminders done, an immediate charge asked for by a card change.
  last_charge_at     TEXT,
  last_failure       TEXT CHECK (last_failure IS NULL OR (last_failure = 'insufficient_funds' OR last_failure = 'bank_block' OR last_failure = 'suspected_fraud' OR last_failure = 'expired_card' OR last_failure = 'incorrect_details' OR last_failure = 'lost_or_stolen' OR last_failure = 'authentication_required' OR last_failure = 'processing_error')),
  retries_done       INTEGER NOT NULL DEFAULT 0 CHECK (retries_done >= 0),
  reminders_sent     INTEGER NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0),
  charge_requested_at TEXT,
  due_reminder_sent  INTEGER NOT NULL DEFAULT 0 CHECK (due_reminder_sent IN (0, 1)),
  -- What the dunning policy decided to do next, and when ('in_flight' while a charge runs).
  next_action        TEXT CHECK (next_action IS NULL OR (next_action = 'charge' OR next_action = 'remind' OR next_action = 'downgrade' OR next_action = 'end_transfer_window' OR next_action = 'remind_transfer_due' OR next_action = 'start_dunning' OR next_action = 'in_flight')),
  next_action_at     TEXT,
  created_at         TEXT NOT NULL,
  closed_at          TEXT,
  void_reason        TEXT,
  CHECK (due_date >= issue_date),
  CHECK ((collection_method = 'transfer') = (payment_reference IS NOT NULL)),
  CHECK ((status = 'void') = (void_reason IS NOT NULL)),
  CHECK ((status = 'open') = (closed_at IS NULL)),
  CHECK (paused_at IS NULL OR status IN ('open', 'uncollectible'))
) STRICT;
INSERT INTO invoices SELECT * FROM invoices__before_0005;
DROP TABLE invoices__before_0005;
CREATE INDEX invoices_account ON invoices (account_id, status);
CREATE INDEX invoices_open_due ON invoices (due_date) WHERE status = 'open';
CREATE INDEX invoices_next_action ON invoices (next_action_at) WHERE next_action_at IS NOT NULL;

-- invoice_lines
ALTER TABLE invoice_lines RENAME TO invoice_lines__before_0005;
CREATE TABLE invoice_lines (
  id                INTEGER PRIMARY KEY,
  invoice_id        INTEGER NOT NULL REFERENCES invoices (id),
  position          INTEGER NOT NULL CHECK (position >= 1),
  kind              TEXT NOT NULL CHECK ((kind = 'plan' OR kind = 'addon' OR kind = 'other')),
  description       TEXT NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
  quantity          INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
  unit_amount_minor INTEGER NOT NULL CHECK (unit_amount_minor > 0),
  amount_minor      INTEGER NOT NULL,
  CHECK (amount_minor = quantity * unit_amount_minor),
  UNIQUE (invoice_id, position)
) STRICT;
INSERT INTO invoice_lines SELECT * FROM invoice_lines__before_0005;
DROP TABLE invoice_lines__before_0005;

-- charge_attempts
ALTER TABLE charge_attempts RENAME TO charge_attempts__before_0005;
CREATE TABLE charge_attempts (
  id               INTEGER PRIMARY KEY,
  idempotency_key  TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 8 AND 255),
  account_id       INTEGER NOT NULL REFERENCES accounts (id),
  card_id          INTEGER NOT NULL REFERENCES cards (id),
  amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  status           TEXT NOT NULL DEFAULT 'pending' CHECK ((status = 'pending' OR status = 'succeeded' OR status = 'declined' OR status = 'error')),
  raw_code         TEXT,
  reason           TEXT CHECK (reason IS NULL OR (reason = 'insufficient_funds' OR reason = 'bank_block' OR reason = 'suspected_fraud' OR reason = 'expired_card' OR reason = 'incorrect_details' OR reason = 'lost_or_stolen' OR reason = 'authentication_required' OR reason = 'processing_error')),
  processor_ref    TEXT,
  actor            TEXT NOT NULL CHECK ((actor = 'scheduler' OR actor = 'customer' OR actor = 'staff' OR actor = 'reconciliation' OR actor = 'system')),
  created_at       TEXT NOT NULL,
  resolved_at      TEXT,
  CHECK ((status = 'pending') = (resolved_at IS NULL)),
  CHECK (status IN ('pending', 'succeeded') OR reason IS NOT NULL),
  CHECK (status <> 'succeeded' OR processor_ref IS NOT NULL)
) STRICT;
INSERT INTO charge_attempts SELECT * FROM charge_attempts__before_0005;
DROP TABLE charge_attempts__before_0005;
CREATE INDEX charge_attempts_pending ON charge_attempts (id) WHERE status = 'pending';
CREATE INDEX charge_attempts_card ON charge_attempts (card_id, created_at, status);

-- payments
ALTER TABLE payments RENAME TO payments__before_0005;
CREATE TABLE payments (
  id                INTEGER PRIMARY KEY,
  account_id        INTEGER NOT NULL REFERENCES accounts (id),
  method            TEXT NOT NULL CHECK ((method = 'card' OR method = 'transfer' OR method = 'credit')),
  amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
  currency          TEXT NOT NULL CHECK (length(currency) = 3),
  received_on       TEXT NOT NULL CHECK (date(received_on) IS received_on),
  reference         TEXT,
  charge_attempt_id INTEGER UNIQUE REFERENCES charge_attempts (id),
  bank_line_id      INTEGER UNIQUE REFERENCES bank_statement_lines (id),
  actor             TEXT NOT NULL CHECK ((actor = 'scheduler' OR actor = 'customer' OR actor = 'staff' OR actor = 'reconciliation' OR actor = 'system')),
  created_at        TEXT NOT NULL,
  CHECK (method <> 'card' OR charge_attempt_id IS NOT NULL)
) STRICT;
INSERT INTO payments SELECT * FROM payments__before_0005;
DROP TABLE payments__before_0005;
CREATE INDEX payments_account ON payments (account_id);

-- bank_statement_lines
ALTER TABLE bank_statement_lines RENAME TO bank_statement_lines__before_0005;
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
  CHECK (match_rule IS NULL OR (match_rule = 'reference' OR match_rule = 'payer_amount' OR match_rule = 'staff')), note TEXT, account_servicer_ref TEXT, dismissed_at TEXT,
  CHECK ((match_status = 'dismissed') = (dismiss_reason IS NOT NULL))
) STRICT;
INSERT INTO bank_statement_lines SELECT * FROM bank_statement_lines__before_0005;
DROP TABLE bank_statement_lines__before_0005;
CREATE INDEX bank_statement_lines_unmatched ON bank_statement_lines (id) WHERE match_status = 'unmatched';
CREATE INDEX bank_statement_lines_amount ON bank_statement_lines (amount_minor, currency, direction);

-- pauses
ALTER TABLE pauses RENAME TO pauses__before_0005;
CREATE TABLE pauses (
  id           INTEGER PRIMARY KEY,
  invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
  proof        TEXT NOT NULL CHECK (length(proof) BETWEEN 1 AND 500),
  actor        TEXT NOT NULL CHECK ((actor = 'scheduler' OR actor = 'customer' OR actor = 'staff' OR actor = 'reconciliation' OR actor = 'system')),
  paused_at    TEXT NOT NULL,
  resumed_at   TEXT,
  resolution   TEXT CHECK (resolution IS NULL OR (resolution = 'resumed' OR resolution = 'paid' OR resolution = 'voided')),
  CHECK ((resumed_at IS NULL) = (resolution IS NULL)),
  CHECK (resumed_at IS NULL OR resumed_at >= paused_at)
) STRICT;
INSERT INTO pauses SELECT * FROM pauses__before_0005;
DROP TABLE pauses__before_0005;
CREATE UNIQUE INDEX pauses_one_open ON pauses (invoice_id) WHERE resumed_at IS NULL;

-- transfer_declarations
ALTER TABLE transfer_declarations RENAME TO transfer_declarations__before_0005;
CREATE TABLE transfer_declarations (
  id             INTEGER PRIMARY KEY,
  invoice_id     INTEGER NOT NULL REFERENCES invoices (id),
  amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
  currency       TEXT NOT NULL CHECK (length(currency) = 3),
  sent_on        TEXT NOT NULL CHECK (date(sent_on) IS sent_on),
  reference      TEXT NOT NULL CHECK (length(reference) BETWEEN 1 AND 140),
  declared_at    TEXT NOT NULL,
  window_ends_at TEXT NOT NULL CHECK (window_ends_at > declared_at),
  closed_at      TEXT,
  outcome        TEXT CHECK (outcome IS NULL OR (outcome = 'received' OR outcome = 'expired' OR outcome = 'cancelled')),
  CHECK ((closed_at IS NULL) = (outcome IS NULL))
) STRICT;
INSERT INTO transfer_declarations SELECT * FROM transfer_declarations__before_0005;
DROP TABLE transfer_declarations__before_0005;
CREATE UNIQUE INDEX transfer_declarations_one_open ON transfer_declarations (invoice_id) WHERE closed_at IS NULL;

-- events
ALTER TABLE events RENAME TO events__before_0005;
CREATE TABLE events (
  id           INTEGER PRIMARY KEY,
  at           TEXT NOT NULL,
  account_id   INTEGER REFERENCES accounts (id),
  invoice_id   INTEGER REFERENCES invoices (id),
  actor        TEXT NOT NULL CHECK ((actor = 'scheduler' OR actor = 'customer' OR actor = 'staff' OR actor = 'reconciliation' OR actor = 'system')),
  kind         TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  reason       TEXT NOT NULL,
  data         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) STRICT;
INSERT INTO events SELECT * FROM events__before_0005;
DROP TABLE events__before_0005;
CREATE INDEX events_account ON events (account_id, id);

-- journal_entries
ALTER TABLE journal_entries RENAME TO journal_entries__before_0005;
CREATE TABLE journal_entries (
  id                INTEGER PRIMARY KEY,
  at                TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK ((kind = 'invoice_issued' OR kind = 'invoice_voided' OR kind = 'card_payment' OR kind = 'transfer_payment' OR kind = 'write_off' OR kind = 'credit_applied' OR kind = 'refund' OR kind = 'processor_fee' OR kind = 'reversal')),
  memo              TEXT NOT NULL,
  invoice_id        INTEGER REFERENCES invoices (id),
  payment_id        INTEGER REFERENCES payments (id)
) STRICT;
INSERT INTO journal_entries SELECT * FROM journal_entries__before_0005;
DROP TABLE journal_entries__before_0005;
CREATE INDEX journal_entries_invoice ON journal_entries (invoice_id);
CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only: post a reversing entry instead'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only: post a reversing entry instead'); END;

-- journal_lines
ALTER TABLE journal_lines RENAME TO journal_lines__before_0005;
CREATE TABLE journal_lines (
  id             INTEGER PRIMARY KEY,
  entry_id       INTEGER NOT NULL REFERENCES journal_entries (id),
  ledger_account TEXT NOT NULL CHECK ((ledger_account = 'receivable' OR ledger_account = 'revenue' OR ledger_account = 'processor_clearing' OR ledger_account = 'bank' OR ledger_account = 'bad_debt' OR ledger_account = 'customer_credit' OR ledger_account = 'processor_fees')),
  currency       TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  debit_minor    INTEGER NOT NULL CHECK (debit_minor >= 0),
  credit_minor   INTEGER NOT NULL CHECK (credit_minor >= 0),
  account_id     INTEGER REFERENCES accounts (id),
  invoice_id     INTEGER REFERENCES invoices (id),
  CHECK ((debit_minor = 0) <> (credit_minor = 0))
) STRICT;
INSERT INTO journal_lines SELECT * FROM journal_lines__before_0005;
DROP TABLE journal_lines__before_0005;
CREATE INDEX journal_lines_entry ON journal_lines (entry_id);
CREATE INDEX journal_lines_account ON journal_lines (account_id, ledger_account) WHERE account_id IS NOT NULL;
CREATE TRIGGER journal_lines_no_update BEFORE UPDATE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines are append-only: post a reversing entry instead'); END;
CREATE TRIGGER journal_lines_no_delete BEFORE DELETE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines are append-only: post a reversing entry instead'); END;

-- processor_report_rows
ALTER TABLE processor_report_rows RENAME TO processor_report_rows__before_0005;
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
  outcome            TEXT NOT NULL CHECK ((outcome = 'matched' OR outcome = 'recorded' OR outcome = 'mismatch' OR outcome = 'unknown' OR outcome = 'duplicate' OR outcome = 'adjustment' OR outcome = 'other')),
  detail             TEXT,
  fee_entry_id       INTEGER REFERENCES journal_entries (id),
  imported_at        TEXT NOT NULL,
  CHECK (gross_minor - fee_minor = net_minor)
) STRICT;
INSERT INTO processor_report_rows SELECT * FROM processor_report_rows__before_0005;
DROP TABLE processor_report_rows__before_0005;
CREATE INDEX processor_report_rows_key ON processor_report_rows (idempotency_key);
CREATE INDEX processor_report_rows_attempt ON processor_report_rows (attempt_id);

