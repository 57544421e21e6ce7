-- The ledger's identity: a random id made once, when the ledger is created (or migrated
-- to this version), and carried by its backups. Every charge ledgerd sends to the
-- processor names it in its metadata, so that at start-up the daemon can ask the
-- processor for this ledger's recent charges and take in any it does not know: those a
-- replaced or restored file lost (see the README's backup section). One row, never
-- changed.
CREATE TABLE ledger_identity (
  id          TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*'),
  created_at  TEXT NOT NULL
) STRICT;

INSERT INTO ledger_identity (id, created_at) VALUES (lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

CREATE TRIGGER ledger_identity_no_update BEFORE UPDATE ON ledger_identity
BEGIN SELECT RAISE(ABORT, 'ledger_identity is written once'); END;
CREATE TRIGGER ledger_identity_no_delete BEFORE DELETE ON ledger_identity
BEGIN SELECT RAISE(ABORT, 'ledger_identity is written once'); END;
CREATE TRIGGER ledger_identity_one_row BEFORE INSERT ON ledger_identity
BEGIN SELECT RAISE(ABORT, 'ledger_identity has one row') WHERE EXISTS (SELECT 1 FROM ledger_identity); END;
