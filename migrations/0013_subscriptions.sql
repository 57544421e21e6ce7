-- Subscriptions: an account's plan and add-ons are state the scheduler bills itself, one
-- invoice per account and period (docs/subscriptions.md).

-- One row per account: how it is billed, its billing anchor (the day its first period
-- started; later periods start on the same day of the month, or the month's last day when
-- it is shorter), how far it has been invoiced, when the next period's invoice is issued,
-- and a plan change waiting for the period's end.
CREATE TABLE subscriptions (
  account_id        INTEGER PRIMARY KEY REFERENCES accounts (id),
  -- 'subscription': the scheduler issues each period's invoice; 'manual': invoices are
  -- issued by hand only (`ledgerd invoice issue`).
  billing           TEXT NOT NULL CHECK ((billing = 'subscription' OR billing = 'manual')),
  -- How the period's invoices are collected: charged to the account's cards, or paid by
  -- bank transfer quoting the invoice's payment reference.
  collection_method TEXT NOT NULL CHECK ((collection_method = 'card' OR collection_method = 'transfer')),
  anchor_date       TEXT NOT NULL CHECK (date(anchor_date) IS anchor_date),
  -- The end (exclusive) of the last period invoiced; NULL before the first.
  billed_until      TEXT CHECK (billed_until IS NULL OR date(billed_until) IS billed_until),
  -- When the next period's invoice is issued; NULL when none is (free plan, manual
  -- billing, closed account).
  renew_at          TEXT CHECK (renew_at IS NULL OR renew_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'),
  -- A plan change that takes effect when the current period ends, who asked and when.
  scheduled_plan_id INTEGER REFERENCES plans (id),
  scheduled_by      TEXT CHECK (scheduled_by IS NULL OR (scheduled_by = 'scheduler' OR scheduled_by = 'customer' OR scheduled_by = 'staff' OR scheduled_by = 'reconciliation' OR scheduled_by = 'system')),
  scheduled_at      TEXT,
  updated_at        TEXT NOT NULL,
  CHECK ((scheduled_plan_id IS NULL) = (scheduled_by IS NULL) AND (scheduled_by IS NULL) = (scheduled_at IS NULL))
) STRICT;
CREATE INDEX subscriptions_renewal ON subscriptions (renew_at) WHERE renew_at IS NOT NULL;

-- Accounts opened before subscriptions were invoiced by hand: they stay so until the
-- operator switches them on (`ledgerd account update N --billing subscription`).
INSERT INTO subscriptions (account_id, billing, collection_method, anchor_date, updated_at)
SELECT id, 'manual', 'card', substr(created_at, 1, 10), created_at FROM accounts;

-- The invoice the scheduler issued for a period: its start and end (exclusive). One per
-- account and period start, whatever crashes and restarts happen around the renewal.
ALTER TABLE invoices ADD COLUMN period_start TEXT CHECK (period_start IS NULL OR date(period_start) IS period_start);
ALTER TABLE invoices ADD COLUMN period_end TEXT CHECK (period_end IS NULL OR date(period_end) IS period_end);
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (account_id, period_start) WHERE period_start IS NOT NULL;

-- Add-ons: when each ends is `removed_at`, which may lie ahead (removed at the period's
-- end). The live index keeps one add-on per code until it is given an end.
CREATE INDEX account_addons_account ON account_addons (account_id, added_at);

-- Credit notes: money given back to a customer as credit on the account (a plan or add-on
-- ended at once mid-period), which the next invoice consumes. Posted as a reversal of
-- revenue into customer credit.
CREATE TABLE credit_notes (
  id           INTEGER PRIMARY KEY,
  number       TEXT NOT NULL UNIQUE CHECK (number GLOB 'CN-[0-9][0-9][0-9][0-9][0-9][0-9]*'),
  account_id   INTEGER NOT NULL REFERENCES accounts (id),
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency     TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  reason       TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
  entry_id     INTEGER NOT NULL UNIQUE REFERENCES journal_entries (id),
  actor        TEXT NOT NULL,
  created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX credit_notes_account ON credit_notes (account_id);
