-- Indexes for the scheduler's recurring reads.

-- The hourly look for default cards about to expire reads only the cards expiring this
-- month or the next (months counted as year * 12 + month), not every card of the book.
CREATE INDEX cards_default_expiry ON cards (exp_year * 12 + exp_month) WHERE is_default = 1 AND status = 'active';

-- A card's attempts that count toward the network's limit are counted from the index
-- alone: the status rides along, so no attempt row is read to skip the errors.
DROP INDEX charge_attempts_card;
CREATE INDEX charge_attempts_card ON charge_attempts (card_id, created_at, status);
