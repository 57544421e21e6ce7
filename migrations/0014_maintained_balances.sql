-- Running balances, kept as the journal is written, so that the trial balance and an
-- account's balance are read from a handful of rows instead of summing every journal line
-- the book ever had.
--
-- One row per ledger account, currency and customer: the sums of the debits and of the
-- credits of every journal line with that key. `account_id` is the customer the lines
-- name on the accounts kept per customer (receivable, customer_credit, bad_debt), and 0 on
-- the others (revenue, bank, processor clearing…, one row per currency each: a row per
-- customer there would spread every commit over pages nobody reads): a key column cannot
-- hold NULL, and no account has the id 0. `LedgerStore.post`, the one place that
-- writes journal lines, brings the rows up to date in the transaction that writes the
-- lines, one UPSERT per key of the entry (an AFTER INSERT trigger on journal_lines cost
-- about twice as much per line when measured: docs/audit-views.md). The journal stays the
-- source of truth: `ledgerd check` adds it up again and names every row that differs
-- (`ledger_balances_match_journal`).
CREATE TABLE ledger_balances (
  account_id     INTEGER NOT NULL CHECK (account_id >= 0),
  currency       TEXT NOT NULL,
  ledger_account TEXT NOT NULL,
  debits_minor   INTEGER NOT NULL CHECK (debits_minor >= 0),
  credits_minor  INTEGER NOT NULL CHECK (credits_minor >= 0),
  PRIMARY KEY (ledger_account, currency, account_id)
) STRICT, WITHOUT ROWID;
-- One account's rows, in the order v_account_balances groups them. The key leads with the
-- ledger account so that the trial balance adds the rows up in the order it groups them,
-- without sorting the whole table; this index only changes when a key first appears.
CREATE INDEX ledger_balances_account ON ledger_balances (account_id, currency);

INSERT INTO ledger_balances (account_id, currency, ledger_account, debits_minor, credits_minor)
SELECT CASE WHEN ledger_account = 'receivable' OR ledger_account = 'customer_credit' OR ledger_account = 'bad_debt'
            THEN coalesce(account_id, 0) ELSE 0 END,
       currency, ledger_account, sum(debit_minor), sum(credit_minor)
FROM journal_lines GROUP BY 1, 2, 3;

-- The trial balance from the running balances: the same rows, columns and order as the
-- journal's sums. The per-ledger-account sums are made once and the currency totals added
-- up from them.
DROP VIEW v_trial_balance;
CREATE VIEW v_trial_balance AS
WITH sums AS MATERIALIZED (
  SELECT ledger_account, currency, sum(debits_minor) AS debits_minor, sum(credits_minor) AS credits_minor
  FROM ledger_balances GROUP BY ledger_account, currency
)
SELECT * FROM (
  SELECT ledger_account, currency, debits_minor, credits_minor, debits_minor - credits_minor AS balance_minor FROM sums
  UNION ALL
  SELECT '(total)', currency, sum(debits_minor), sum(credits_minor), sum(debits_minor) - sum(credits_minor)
  FROM sums GROUP BY currency
) ORDER BY currency, ledger_account = '(total)', ledger_account;

-- Each account's position from its running balances (the meaning of
-- 0010_account_balances_owed.sql): one account's rows are a few rows of ledger_balances,
-- found through ledger_balances_account.
DROP VIEW v_account_balances;
CREATE VIEW v_account_balances AS
SELECT a.id AS account_id, a.name, a.email, a.status, p.code AS plan, b.currency,
       sum(CASE WHEN b.ledger_account = 'receivable' THEN b.debits_minor - b.credits_minor ELSE 0 END) AS receivable_minor,
       sum(CASE WHEN b.ledger_account = 'bad_debt' THEN b.debits_minor - b.credits_minor ELSE 0 END) AS written_off_minor,
       sum(CASE WHEN b.ledger_account = 'customer_credit' THEN b.credits_minor - b.debits_minor ELSE 0 END) AS credit_minor,
       sum(CASE WHEN b.ledger_account = 'customer_credit' THEN 0 ELSE b.debits_minor - b.credits_minor END) AS owed_minor,
       sum(b.debits_minor - b.credits_minor) AS balance_minor
FROM accounts a
JOIN plans p ON p.id = a.plan_id
JOIN ledger_balances b ON b.account_id = a.id AND b.ledger_account IN ('receivable', 'bad_debt', 'customer_credit')
GROUP BY a.id, b.currency
ORDER BY a.id, b.currency;

-- Open invoices by account and currency: what receivables aging and the dunning pipeline
-- read, in the order they group by, without passing over the paid, void and written-off
-- invoices that make up most of a book. One account's open invoices are found by it too.
CREATE INDEX invoices_open_account ON invoices (account_id, currency) WHERE status = 'open';

-- Receivables aging (meaning of 0002_audit_views.sql) from open invoices only: each one's
-- amount due and days past due from its own row, without reading the invoice twice.
DROP VIEW v_receivables_aging;
CREATE VIEW v_receivables_aging AS
SELECT o.account_id, a.name, o.currency,
       sum(CASE WHEN o.days_past_due <= 0 THEN o.due_minor ELSE 0 END) AS current_minor,
       sum(CASE WHEN o.days_past_due BETWEEN 1 AND 30 THEN o.due_minor ELSE 0 END) AS d1_30_minor,
       sum(CASE WHEN o.days_past_due BETWEEN 31 AND 60 THEN o.due_minor ELSE 0 END) AS d31_60_minor,
       sum(CASE WHEN o.days_past_due BETWEEN 61 AND 90 THEN o.due_minor ELSE 0 END) AS d61_90_minor,
       sum(CASE WHEN o.days_past_due > 90 THEN o.due_minor ELSE 0 END) AS d90_plus_minor,
       sum(o.due_minor) AS total_minor
FROM (
  SELECT i.account_id, i.currency,
         i.total_minor - (SELECT coalesce(sum(pa.amount_minor), 0) FROM payment_allocations pa WHERE pa.invoice_id = i.id)
           AS due_minor,
         (unixepoch(date('now')) - unixepoch(i.due_date)) / 86400 AS days_past_due
  FROM invoices i
  WHERE i.status = 'open'
) o
JOIN accounts a ON a.id = o.account_id
WHERE o.due_minor > 0
GROUP BY o.account_id, o.currency
ORDER BY o.account_id, o.currency;

-- Dunning pipeline (meaning of 0002_audit_views.sql) from open invoices only, each read
-- once: an open invoice's amount due is its total less what is allocated to it.
DROP VIEW v_dunning_pipeline;
CREATE VIEW v_dunning_pipeline AS
SELECT a.id AS account_id, a.name, a.email, a.status, i.currency,
       min(i.dunning_started_at) AS past_due_since,
       min(i.grace_deadline) AS grace_deadline,
       count(*) AS invoices_in_dunning,
       sum(i.total_minor - (SELECT coalesce(sum(pa.amount_minor), 0) FROM payment_allocations pa WHERE pa.invoice_id = i.id))
         AS due_minor,
       sum(i.paused_at IS NOT NULL) AS paused_invoices
FROM invoices i
JOIN accounts a ON a.id = i.account_id
WHERE i.status = 'open' AND i.dunning_started_at IS NOT NULL
GROUP BY a.id, i.currency
ORDER BY grace_deadline, a.id;

-- One account's charge attempts (`v_charge_attempts WHERE account_id = …`), in id order,
-- from its own entries: the index holds each attempt's id beside its account.
CREATE INDEX charge_attempts_account ON charge_attempts (account_id);
