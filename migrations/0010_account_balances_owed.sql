-- What an account owes is what its invoices have due, written-off ones included: an
-- uncollectible invoice is still owed by the customer and can be paid later. The journal
-- moves a written-off amount from receivable to bad debt, so the receivable sub-ledger
-- alone said "owes 0.00" beside an invoice "due 24.00". The view keeps the journal's
-- receivable and adds the customer's bad-debt sub-ledger (written off, not yet
-- recovered); `owed_minor` is their sum and equals the `due_minor` of the account's
-- invoices in `v_invoice_balances`; `balance_minor` is what is owed less the credit held.
DROP VIEW v_account_balances;
CREATE VIEW v_account_balances AS
SELECT a.id AS account_id, a.name, a.email, a.status, p.code AS plan, l.currency,
       sum(CASE WHEN l.ledger_account = 'receivable' THEN l.debit_minor - l.credit_minor ELSE 0 END) AS receivable_minor,
       sum(CASE WHEN l.ledger_account = 'bad_debt' THEN l.debit_minor - l.credit_minor ELSE 0 END) AS written_off_minor,
       sum(CASE WHEN l.ledger_account = 'customer_credit' THEN l.credit_minor - l.debit_minor ELSE 0 END) AS credit_minor,
       sum(CASE WHEN l.ledger_account = 'customer_credit' THEN 0 ELSE l.debit_minor - l.credit_minor END) AS owed_minor,
       sum(l.debit_minor - l.credit_minor) AS balance_minor
FROM accounts a
JOIN plans p ON p.id = a.plan_id
JOIN journal_lines l ON l.account_id = a.id AND l.ledger_account IN ('receivable', 'bad_debt', 'customer_credit')
GROUP BY a.id, l.currency
ORDER BY a.id, l.currency;
