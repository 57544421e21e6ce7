-- Audit views: everything an auditor asks, answerable with `sqlite3 -readonly` alone.
-- Amounts are integer minor units (cents for EUR) next to their currency.

-- What each invoice was billed, what has been paid against it, and what is still due.
-- (The paid amount is a correlated subquery on the allocations' invoice index, so a
-- lookup of one invoice reads only its own allocations.)
CREATE VIEW v_invoice_balances AS
SELECT invoice_id, number, account_id, status, collection_method, currency, issue_date, due_date, total_minor,
       paid_minor,
       CASE WHEN status IN ('open', 'uncollectible') THEN total_minor - paid_minor ELSE 0 END AS due_minor,
       payment_reference, paused
FROM (
  SELECT i.id AS invoice_id, i.number, i.account_id, i.status, i.collection_method, i.currency,
         i.issue_date, i.due_date, i.total_minor,
         (SELECT coalesce(sum(a.amount_minor), 0) FROM payment_allocations a WHERE a.invoice_id = i.id) AS paid_minor,
         i.payment_reference, i.paused_at IS NOT NULL AS paused
  FROM invoices i
);

-- Trial balance: per ledger account and currency, then a '(total)' row per currency whose
-- debits equal its credits when the journal is sound.
CREATE VIEW v_trial_balance AS
SELECT * FROM (
  SELECT ledger_account, currency,
         sum(debit_minor) AS debits_minor, sum(credit_minor) AS credits_minor,
         sum(debit_minor) - sum(credit_minor) AS balance_minor
  FROM journal_lines GROUP BY ledger_account, currency
  UNION ALL
  SELECT '(total)', currency, sum(debit_minor), sum(credit_minor), sum(debit_minor) - sum(credit_minor)
  FROM journal_lines GROUP BY currency
) ORDER BY currency, ledger_account = '(total)', ledger_account;

-- Each customer account's position from the journal's sub-ledger: what it owes on
-- invoices (receivable) less the credit it holds from overpayments.
CREATE VIEW v_account_balances AS
SELECT a.id AS account_id, a.name, a.email, a.status, p.code AS plan, l.currency,
       sum(CASE WHEN l.ledger_account = 'receivable' THEN l.debit_minor - l.credit_minor ELSE 0 END) AS receivable_minor,
       sum(CASE WHEN l.ledger_account = 'customer_credit' THEN l.credit_minor - l.debit_minor ELSE 0 END) AS credit_minor,
       sum(l.debit_minor - l.credit_minor) AS balance_minor
FROM accounts a
JOIN plans p ON p.id = a.plan_id
JOIN journal_lines l ON l.account_id = a.id AND l.ledger_account IN ('receivable', 'customer_credit')
GROUP BY a.id, l.currency
ORDER BY a.id, l.currency;

-- Receivables aging: open amounts due by days past their due date, as of today (UTC).
CREATE VIEW v_receivables_aging AS
SELECT b.account_id, a.name, b.currency,
       sum(CASE WHEN d.days_past_due <= 0 THEN b.due_minor ELSE 0 END) AS current_minor,
       sum(CASE WHEN d.days_past_due BETWEEN 1 AND 30 THEN b.due_minor ELSE 0 END) AS d1_30_minor,
       sum(CASE WHEN d.days_past_due BETWEEN 31 AND 60 THEN b.due_minor ELSE 0 END) AS d31_60_minor,
       sum(CASE WHEN d.days_past_due BETWEEN 61 AND 90 THEN b.due_minor ELSE 0 END) AS d61_90_minor,
       sum(CASE WHEN d.days_past_due > 90 THEN b.due_minor ELSE 0 END) AS d90_plus_minor,
       sum(b.due_minor) AS total_minor
FROM v_invoice_balances b
JOIN accounts a ON a.id = b.account_id
JOIN (SELECT id, (unixepoch(date('now')) - unixepoch(due_date)) / 86400 AS days_past_due FROM invoices) d ON d.id = b.invoice_id
WHERE b.status = 'open' AND b.due_minor > 0
GROUP BY b.account_id, b.currency
ORDER BY b.account_id, b.currency;

-- Dunning pipeline: accounts with card invoices in dunning, since when, and the deadline.
CREATE VIEW v_dunning_pipeline AS
SELECT a.id AS account_id, a.name, a.email, a.status, b.currency,
       min(i.dunning_started_at) AS past_due_since,
       min(i.grace_deadline) AS grace_deadline,
       count(*) AS invoices_in_dunning,
       sum(b.due_minor) AS due_minor,
       sum(i.paused_at IS NOT NULL) AS paused_invoices
FROM invoices i
JOIN accounts a ON a.id = i.account_id
JOIN v_invoice_balances b ON b.invoice_id = i.id
WHERE i.status = 'open' AND i.dunning_started_at IS NOT NULL
GROUP BY a.id, b.currency
ORDER BY grace_deadline, a.id;

-- Charge attempts with their card, the invoices they covered and the decline reason.
CREATE VIEW v_charge_attempts AS
SELECT c.id AS attempt_id, c.created_at, c.resolved_at, c.account_id, a.name,
       k.brand || ' •••• ' || k.last4 AS card, c.card_id,
       (SELECT group_concat(i.number, ',') FROM charge_attempt_invoices ci JOIN invoices i ON i.id = ci.invoice_id
         WHERE ci.attempt_id = c.id) AS invoices,
       c.amount_minor, c.currency, c.status, c.raw_code, c.reason, c.actor, c.idempotency_key, c.processor_ref
FROM charge_attempts c
JOIN accounts a ON a.id = c.account_id
JOIN cards k ON k.id = c.card_id
ORDER BY c.id;

-- Every event per account, oldest first: the answer to "why did this happen, and who did it?"
CREATE VIEW v_account_events AS
SELECT e.account_id, a.name, e.id AS event_id, e.at, e.actor, e.kind, i.number AS invoice, e.reason, e.data
FROM events e
LEFT JOIN accounts a ON a.id = e.account_id
LEFT JOIN invoices i ON i.id = e.invoice_id
ORDER BY e.account_id, e.id;
