-- ledgerd schema, version 1.
-- Conventions: STRICT tables; money is INTEGER minor units beside a TEXT ISO 4217 code;
-- instants are UTC text 'YYYY-MM-DDTHH:MM:SSZ'; calendar dates are 'YYYY-MM-DD'.

-- Plans: 'free' always exists (price 0); paid plans have a price, currency and period.
CREATE TABLE plans (
  id          INTEGER PRIMARY KEY,
  code        TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 32 AND code GLOB '[a-z]*' AND code NOT GLOB '*[^a-z0-9_-]*'),
  name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  currency    TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  period      TEXT NOT NULL CHECK (period IN ('month', 'year')),
  created_at  TEXT NOT NULL CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'),
  CHECK (code <> 'free' OR price_minor = 0)
) STRICT;

INSERT INTO plans (code, name, price_minor, currency, period, created_at)
VALUES ('free', 'Free', 0, 'EUR', 'month', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

CREATE TABLE accounts (
  id           INTEGER PRIMARY KEY,
  email        TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email GLOB '?*@?*.?*'
                                    AND email NOT GLOB ('*[' || char(1, 9, 10, 13, 32, 127) || ']*')),
  name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name NOT GLOB ('*[' || char(10, 13) || ']*')),
  locale       TEXT NOT NULL CHECK (locale IN ('fr', 'en')),
  plan_id      INTEGER NOT NULL REFERENCES plans (id),
  status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'past_due', 'downgraded', 'closed')),
  -- The plan before a downgrade, so staff (or the restore option) can put it back.
  previous_plan_id INTEGER REFERENCES plans (id),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
) STRICT;

-- Recurring extras of an account, billed as 'addon' invoice lines; removed at a downgrade.
CREATE TABLE account_addons (
  id           INTEGER PRIMARY KEY,
  account_id   INTEGER NOT NULL REFERENCES accounts (id),
  code         TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 32),
  description  TEXT NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
  price_minor  INTEGER NOT NULL CHECK (price_minor > 0),
  currency     TEXT NOT NULL CHECK (length(currency) = 3),
  added_at     TEXT NOT NULL,
  removed_at   TEXT,
  removed_reason TEXT,
  CHECK ((removed_at IS NULL) = (removed_reason IS NULL))
) STRICT;
CREATE UNIQUE INDEX account_addons_live ON account_addons (account_id, code) WHERE removed_at IS NULL;

-- Cards: the processor's token and display data only. Never a card number, never a CVC.
CREATE TABLE cards (
  id           INTEGER PRIMARY KEY,
  account_id   INTEGER NOT NULL REFERENCES accounts (id),
  token        TEXT NOT NULL UNIQUE CHECK (length(token) BETWEEN 3 AND 255),
  brand        TEXT NOT NULL CHECK (brand IN ('visa', 'mastercard', 'amex', 'discover', 'jcb', 'diners', 'unionpay', 'cb', 'other')),
  last4        TEXT NOT NULL CHECK (length(last4) = 4 AND last4 NOT GLOB '*[^0-9]*'),
  exp_month    INTEGER NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
  exp_year     INTEGER NOT NULL CHECK (exp_year BETWEEN 2000 AND 2100),
  postal_code  TEXT CHECK (postal_code IS NULL OR length(postal_code) BETWEEN 1 AND 16),
  country      TEXT CHECK (country IS NULL OR (length(country) = 2 AND country NOT GLOB '*[^A-Z]*')),
  status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_update', 'removed')),
  is_default   INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  removed_at   TEXT,
  CHECK (is_default = 0 OR status <> 'removed'),
  CHECK ((status = 'removed') = (removed_at IS NOT NULL))
) STRICT;
-- At most one default card per account.
CREATE UNIQUE INDEX cards_one_default ON cards (account_id) WHERE is_default = 1;
CREATE INDEX cards_account ON cards (account_id, id);

CREATE TABLE invoices (
  id                 INTEGER PRIMARY KEY,
  number             TEXT NOT NULL UNIQUE CHECK (number GLOB 'INV-[0-9][0-9][0-9][0-9][0-9][0-9]*'),
  account_id         INTEGER NOT NULL REFERENCES accounts (id),
  currency           TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  total_minor        INTEGER NOT NULL CHECK (total_minor > 0),
  status             TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'void', 'uncollectible')),
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
  last_failure       TEXT CHECK (last_failure IS NULL OR last_failure IN ('insufficient_funds', 'bank_block', 'suspected_fraud',
                       'expired_card', 'incorrect_details', 'lost_or_stolen', 'authentication_required', 'processing_error')),
  retries_done       INTEGER NOT NULL DEFAULT 0 CHECK (retries_done >= 0),
  reminders_sent     INTEGER NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0),
  charge_requested_at TEXT,
  due_reminder_sent  INTEGER NOT NULL DEFAULT 0 CHECK (due_reminder_sent IN (0, 1)),
  -- What the dunning policy decided to do next, and when ('in_flight' while a charge runs).
  next_action        TEXT CHECK (next_action IS NULL OR next_action IN ('charge', 'remind', 'downgrade', 'end_transfer_window',
                       'remind_transfer_due', 'start_dunning', 'in_flight')),
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
CREATE INDEX invoices_account ON invoices (account_id, status);
CREATE INDEX invoices_open_due ON invoices (due_date) WHERE status = 'open';
CREATE INDEX invoices_next_action ON invoices (next_action_at) WHERE next_action_at IS NOT NULL;

CREATE TABLE invoice_lines (
  id                INTEGER PRIMARY KEY,
  invoice_id        INTEGER NOT NULL REFERENCES invoices (id),
  position          INTEGER NOT NULL CHECK (position >= 1),
  kind              TEXT NOT NULL CHECK (kind IN ('plan', 'addon', 'other')),
  description       TEXT NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
  quantity          INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
  unit_amount_minor INTEGER NOT NULL CHECK (unit_amount_minor > 0),
  amount_minor      INTEGER NOT NULL,
  CHECK (amount_minor = quantity * unit_amount_minor),
  UNIQUE (invoice_id, position)
) STRICT;

-- One charge attempt on one card. Written 'pending' and committed before the processor is
-- called; the idempotency key is what the processor deduplicates on.
CREATE TABLE charge_attempts (
  id               INTEGER PRIMARY KEY,
  idempotency_key  TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 8 AND 255),
  account_id       INTEGER NOT NULL REFERENCES accounts (id),
  card_id          INTEGER NOT NULL REFERENCES cards (id),
  amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
  currency         TEXT NOT NULL CHECK (length(currency) = 3),
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'declined', 'error')),
  raw_code         TEXT,
  reason           TEXT CHECK (reason IS NULL OR reason IN ('insufficient_funds', 'bank_block', 'suspected_fraud', 'expired_card',
                                                            'incorrect_details', 'lost_or_stolen', 'authentication_required', 'processing_error')),
  processor_ref    TEXT,
  actor            TEXT NOT NULL CHECK (actor IN ('scheduler', 'customer', 'staff', 'reconciliation', 'system')),
  created_at       TEXT NOT NULL,
  resolved_at      TEXT,
  CHECK ((status = 'pending') = (resolved_at IS NULL)),
  CHECK (status IN ('pending', 'succeeded') OR reason IS NOT NULL),
  CHECK (status <> 'succeeded' OR processor_ref IS NOT NULL)
) STRICT;
CREATE INDEX charge_attempts_pending ON charge_attempts (id) WHERE status = 'pending';
CREATE INDEX charge_attempts_card ON charge_attempts (card_id, created_at);

-- The invoices one attempt pays: same-day card invoices of an account share one charge.
CREATE TABLE charge_attempt_invoices (
  attempt_id   INTEGER NOT NULL REFERENCES charge_attempts (id),
  invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  PRIMARY KEY (attempt_id, invoice_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX charge_attempt_invoices_invoice ON charge_attempt_invoices (invoice_id);

-- Money received, whatever its method. What is not allocated to invoices is account credit.
CREATE TABLE payments (
  id                INTEGER PRIMARY KEY,
  account_id        INTEGER NOT NULL REFERENCES accounts (id),
  method            TEXT NOT NULL CHECK (method IN ('card', 'transfer', 'credit')),
  amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
  currency          TEXT NOT NULL CHECK (length(currency) = 3),
  received_on       TEXT NOT NULL CHECK (date(received_on) IS received_on),
  reference         TEXT,
  charge_attempt_id INTEGER UNIQUE REFERENCES charge_attempts (id),
  bank_line_id      INTEGER UNIQUE REFERENCES bank_statement_lines (id),
  actor             TEXT NOT NULL CHECK (actor IN ('scheduler', 'customer', 'staff', 'reconciliation', 'system')),
  created_at        TEXT NOT NULL,
  CHECK (method <> 'card' OR charge_attempt_id IS NOT NULL)
) STRICT;
CREATE INDEX payments_account ON payments (account_id);

CREATE TABLE payment_allocations (
  payment_id   INTEGER NOT NULL REFERENCES payments (id),
  invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  PRIMARY KEY (payment_id, invoice_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX payment_allocations_invoice ON payment_allocations (invoice_id);

-- Lines of imported bank statements, keyed so that a re-import records nothing twice.
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
  match_status     TEXT NOT NULL DEFAULT 'unmatched' CHECK (match_status IN ('matched', 'unmatched', 'dismissed', 'ignored')),
  invoice_id       INTEGER REFERENCES invoices (id),
  dismiss_reason   TEXT,
  imported_at      TEXT NOT NULL,
  CHECK ((match_status = 'dismissed') = (dismiss_reason IS NOT NULL))
) STRICT;
CREATE INDEX bank_statement_lines_unmatched ON bank_statement_lines (id) WHERE match_status = 'unmatched';

-- "Payment not registered" reports: collection of the invoice stops while one is open.
CREATE TABLE pauses (
  id           INTEGER PRIMARY KEY,
  invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
  proof        TEXT NOT NULL CHECK (length(proof) BETWEEN 1 AND 500),
  actor        TEXT NOT NULL CHECK (actor IN ('scheduler', 'customer', 'staff', 'reconciliation', 'system')),
  paused_at    TEXT NOT NULL,
  resumed_at   TEXT,
  resolution   TEXT CHECK (resolution IS NULL OR resolution IN ('resumed', 'paid', 'voided')),
  CHECK ((resumed_at IS NULL) = (resolution IS NULL)),
  CHECK (resumed_at IS NULL OR resumed_at >= paused_at)
) STRICT;
CREATE UNIQUE INDEX pauses_one_open ON pauses (invoice_id) WHERE resumed_at IS NULL;

-- Transfers the customer says were sent: the invoice waits for clearing until window_ends_at.
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
  outcome        TEXT CHECK (outcome IS NULL OR outcome IN ('received', 'expired', 'cancelled')),
  CHECK ((closed_at IS NULL) = (outcome IS NULL))
) STRICT;
CREATE UNIQUE INDEX transfer_declarations_one_open ON transfer_declarations (invoice_id) WHERE closed_at IS NULL;

-- Every change of state: who did it, when, and why. "Why was account X downgraded on day D?"
CREATE TABLE events (
  id           INTEGER PRIMARY KEY,
  at           TEXT NOT NULL,
  account_id   INTEGER REFERENCES accounts (id),
  invoice_id   INTEGER REFERENCES invoices (id),
  actor        TEXT NOT NULL CHECK (actor IN ('scheduler', 'customer', 'staff', 'reconciliation', 'system')),
  kind         TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  reason       TEXT NOT NULL,
  data         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data))
) STRICT;
CREATE INDEX events_account ON events (account_id, id);

-- Messages owed to customers, written with the change that causes them. The key makes a
-- replayed decision unable to queue the same message twice.
CREATE TABLE outbox (
  id               INTEGER PRIMARY KEY,
  key              TEXT NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 300),
  account_id       INTEGER NOT NULL REFERENCES accounts (id),
  invoice_id       INTEGER REFERENCES invoices (id),
  kind             TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  locale           TEXT NOT NULL CHECK (locale IN ('fr', 'en')),
  recipient        TEXT NOT NULL,
  data             TEXT NOT NULL CHECK (json_valid(data)),
  created_at       TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  TEXT NOT NULL,
  delivered_at     TEXT,
  failed_at        TEXT,
  last_error       TEXT
) STRICT;
CREATE INDEX outbox_undelivered ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

-- The double-entry journal. Append-only: a correction is a new reversing entry.
CREATE TABLE journal_entries (
  id                INTEGER PRIMARY KEY,
  at                TEXT NOT NULL,
  kind              TEXT NOT NULL CHECK (kind IN ('invoice_issued', 'invoice_voided', 'card_payment', 'transfer_payment', 'write_off',
                                                  'credit_applied', 'refund', 'processor_fee', 'reversal')),
  memo              TEXT NOT NULL,
  invoice_id        INTEGER REFERENCES invoices (id),
  payment_id        INTEGER REFERENCES payments (id)
) STRICT;
CREATE INDEX journal_entries_invoice ON journal_entries (invoice_id);

CREATE TABLE journal_lines (
  id             INTEGER PRIMARY KEY,
  entry_id       INTEGER NOT NULL REFERENCES journal_entries (id),
  ledger_account TEXT NOT NULL CHECK (ledger_account IN ('receivable', 'revenue', 'processor_clearing', 'bank', 'bad_debt',
                                                         'customer_credit', 'processor_fees')),
  currency       TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  debit_minor    INTEGER NOT NULL CHECK (debit_minor >= 0),
  credit_minor   INTEGER NOT NULL CHECK (credit_minor >= 0),
  account_id     INTEGER REFERENCES accounts (id),
  invoice_id     INTEGER REFERENCES invoices (id),
  CHECK ((debit_minor = 0) <> (credit_minor = 0))
) STRICT;
CREATE INDEX journal_lines_entry ON journal_lines (entry_id);
CREATE INDEX journal_lines_account ON journal_lines (account_id, ledger_account) WHERE account_id IS NOT NULL;

CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only: post a reversing entry instead'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only: post a reversing entry instead'); END;
CREATE TRIGGER journal_lines_no_update BEFORE UPDATE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines are append-only: post a reversing entry instead'); END;
CREATE TRIGGER journal_lines_no_delete BEFORE DELETE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines are append-only: post a reversing entry instead'); END;
