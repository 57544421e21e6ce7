-- A declared transfer holds its invoice only as docs/dunning.md says: the clearing window
-- counts from the day the customer says the money was sent (never from the declaration),
-- an invoice gets at most one window unless staff extend it, and a declaration for less
-- than what is due holds nothing until staff accept it. So a declaration may now have no
-- window at all (`window_ends_at` NULL): short and not accepted yet (open), or recorded
-- when its window was already over or the invoice had had its window (closed at once,
-- outcome `no_window`). `due_minor` is what the invoice still owed when it was declared;
-- `accepted_at` is when staff accepted a short declaration (or held it by an extension).
ALTER TABLE transfer_declarations RENAME TO transfer_declarations__before_0009;
CREATE TABLE transfer_declarations (
  id             INTEGER PRIMARY KEY,
  invoice_id     INTEGER NOT NULL REFERENCES invoices (id),
  amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
  currency       TEXT NOT NULL CHECK (length(currency) = 3),
  sent_on        TEXT NOT NULL CHECK (date(sent_on) IS sent_on),
  reference      TEXT NOT NULL CHECK (length(reference) BETWEEN 1 AND 140),
  declared_at    TEXT NOT NULL,
  window_ends_at TEXT,
  due_minor      INTEGER CHECK (due_minor IS NULL OR due_minor >= 0),
  accepted_at    TEXT,
  closed_at      TEXT,
  outcome        TEXT CHECK (outcome IS NULL OR (outcome = 'received' OR outcome = 'expired' OR outcome = 'cancelled' OR outcome = 'no_window')),
  CHECK ((closed_at IS NULL) = (outcome IS NULL)),
  CHECK (outcome IS NOT 'no_window' OR window_ends_at IS NULL)
) STRICT;
INSERT INTO transfer_declarations (id, invoice_id, amount_minor, currency, sent_on, reference, declared_at, window_ends_at, closed_at, outcome)
SELECT id, invoice_id, amount_minor, currency, sent_on, reference, declared_at, window_ends_at, closed_at, outcome
FROM transfer_declarations__before_0009;
DROP TABLE transfer_declarations__before_0009;
CREATE UNIQUE INDEX transfer_declarations_one_open ON transfer_declarations (invoice_id) WHERE closed_at IS NULL;
