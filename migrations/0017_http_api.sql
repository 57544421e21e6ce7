-- The HTTP API inside `ledgerd serve`: its keys, the answers kept for Idempotency-Key, the
-- processor's webhook events received, and the webhooks ledgerd sends to the host.

-- API keys, created by `ledgerd api-key create` and revoked by `ledgerd api-key revoke`. The key itself is shown once and never
-- kept: only its SHA-256 (a key is 32 random bytes, so a plain digest cannot be reversed by
-- guessing). `prefix` is the key's first characters, for staff to tell keys apart.
CREATE TABLE api_keys (
  id             INTEGER PRIMARY KEY,
  name           TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  role           TEXT NOT NULL CHECK (role = 'customer' OR role = 'staff' OR role = 'read'),
  -- A customer key (a dashboard acting for one customer) acts on its own account only.
  account_id     INTEGER REFERENCES accounts (id),
  prefix         TEXT NOT NULL CHECK (length(prefix) BETWEEN 8 AND 16),
  secret_sha256  TEXT NOT NULL UNIQUE CHECK (length(secret_sha256) = 64),
  created_at     TEXT NOT NULL,
  revoked_at     TEXT,
  CHECK ((role = 'customer') = (account_id IS NOT NULL))
) STRICT;

-- The first answer to a POST under an Idempotency-Key, written in the same transaction as
-- the change it made, so that a replay within 24 hours returns it and changes nothing, and
-- a different request under the same key is refused.
CREATE TABLE api_idempotency (
  api_key_id      INTEGER NOT NULL REFERENCES api_keys (id),
  key             TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  request_sha256  TEXT NOT NULL CHECK (length(request_sha256) = 64),
  status          INTEGER NOT NULL CHECK (status BETWEEN 200 AND 599),
  response        TEXT NOT NULL,
  created_at      TEXT NOT NULL,
  PRIMARY KEY (api_key_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);

-- Webhook events from the card processor (Stripe), kept once per event id, whatever the
-- number of deliveries. A PaymentIntent's outcome names the attempt it answers; the daemon
-- records that answer for an attempt still pending (and only the daemon records charges),
-- then sets `applied_at` and what it did.
CREATE TABLE processor_events (
  event_id     TEXT PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
  type         TEXT NOT NULL,
  object_id    TEXT,
  created      INTEGER NOT NULL,
  received_at  TEXT NOT NULL,
  attempt_id   INTEGER REFERENCES charge_attempts (id),
  outcome      TEXT CHECK (outcome IS NULL OR outcome = 'succeeded' OR outcome = 'declined' OR outcome = 'failed'
                           OR outcome = 'processing'),
  reference    TEXT,
  raw_code     TEXT,
  amount_minor INTEGER,
  currency     TEXT,
  applied_at   TEXT,
  result       TEXT
) STRICT;
CREATE INDEX processor_events_waiting ON processor_events (attempt_id) WHERE applied_at IS NULL;

-- The host's endpoints for ledgerd's own webhooks. The secret signs each delivery
-- (Standard Webhooks: `whsec_` and base64), so it is kept as given to the host.
CREATE TABLE webhook_endpoints (
  id           INTEGER PRIMARY KEY,
  url          TEXT NOT NULL CHECK (url LIKE 'https://%' OR url LIKE 'http://%'),
  secret       TEXT NOT NULL CHECK (secret LIKE 'whsec_%'),
  event_types  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(event_types) AND json_type(event_types) = 'array'),
  created_at   TEXT NOT NULL,
  disabled_at  TEXT
) STRICT;

-- Which events leave as webhooks, and under which type.
CREATE TABLE webhook_event_types (
  event_kind  TEXT PRIMARY KEY,
  type        TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO webhook_event_types (event_kind, type) VALUES
  ('invoice_issued', 'invoice.issued'),
  ('payment_received', 'invoice.payment_received'),
  ('charge_declined', 'invoice.payment_failed'),
  ('account_past_due', 'account.past_due'),
  ('account_downgraded', 'account.downgraded'),
  ('invoice_paused', 'invoice.paused'),
  ('invoice_resumed', 'invoice.resumed'),
  ('invoice_voided', 'invoice.voided'),
  ('transfer_not_received', 'transfer.window_ended');

-- One delivery per endpoint and event, written by the trigger below in the transaction that
-- writes the event: a change and its webhooks are committed together or not at all.
CREATE TABLE webhook_deliveries (
  id               INTEGER PRIMARY KEY,
  endpoint_id      INTEGER NOT NULL REFERENCES webhook_endpoints (id),
  event_id         INTEGER NOT NULL REFERENCES events (id),
  type             TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending' CHECK (status = 'pending' OR status = 'delivered' OR status = 'failed'),
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  TEXT NOT NULL,
  last_attempt_at  TEXT,
  last_result      TEXT,
  delivered_at     TEXT,
  UNIQUE (endpoint_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TRIGGER events_webhook_deliveries AFTER INSERT ON events
WHEN EXISTS (SELECT 1 FROM webhook_event_types WHERE event_kind = NEW.kind)
BEGIN
  INSERT INTO webhook_deliveries (endpoint_id, event_id, type, next_attempt_at)
  SELECT e.id, NEW.id, t.type, NEW.at
  FROM webhook_endpoints AS e JOIN webhook_event_types AS t ON t.event_kind = NEW.kind
  WHERE e.disabled_at IS NULL
    AND (json_array_length(e.event_types) = 0
         OR EXISTS (SELECT 1 FROM json_each(e.event_types) WHERE json_each.value = t.type));
END;

-- `/metrics` counts accounts by status at each scrape: from this index, not the table.
CREATE INDEX accounts_status ON accounts (status);
