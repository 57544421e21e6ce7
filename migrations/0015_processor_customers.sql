-- The account's customer at the card processor (Stripe: `cus_…`): a real processor keeps
-- cards under a customer, and an off-session charge names both. NULL for the simulated
-- processor, which needs none.
ALTER TABLE accounts ADD COLUMN processor_customer TEXT
  CHECK (processor_customer IS NULL OR (length(processor_customer) BETWEEN 5 AND 255 AND processor_customer GLOB 'cus_[A-Za-z0-9]*'
         AND processor_customer NOT GLOB 'cus_*[^A-Za-z0-9]*'));
