-- A card's attempts that count toward the network's limit (pending, succeeded, declined)
-- are the only ones in its index: an attempt closed as an error (the processor's fault,
-- never counted) leaves it. Counting a card's window then reads what counts and nothing
-- else, however many times the processor failed; the index is smaller too.
DROP INDEX charge_attempts_card;
CREATE INDEX charge_attempts_card ON charge_attempts (card_id, created_at, status) WHERE status <> 'error';
