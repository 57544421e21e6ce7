-- Payments recorded by hand (`ledgerd payment record`: no charge attempt, no bank line) by
-- amount, so that each credit line of a bank statement finds at once whether it is the
-- bank's record of one of them (docs/reconciliation.md), rather than booking it again.
-- Partial: payments from charges and from statement lines are never looked up this way.
CREATE INDEX payments_recorded_by_hand ON payments (amount_minor, currency)
WHERE bank_line_id IS NULL AND charge_attempt_id IS NULL AND method = 'transfer';
