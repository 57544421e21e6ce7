-- The refunds Stripe's webhooks posted, found by their charge: the nightly reconciliation
-- asks, for each refund row of the processor's report that names a known charge, whether
-- the webhook already put it in the journal. Partial: only charge.refunded events.
CREATE INDEX processor_events_refunds ON processor_events (object_id) WHERE type = 'charge.refunded';
