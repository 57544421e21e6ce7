-- A hash chain over the journal: each entry's hash is SHA-256 of the previous entry's hash
-- and of the entry's own content (its id, time, kind, memo, invoice and payment, and its
-- lines in order), computed by ledgerd when it posts the entry (`JournalChain` in
-- Sources/LedgerStore). Changing any entry or line after it was written, even with the
-- append-only triggers dropped, breaks the chain from that entry on, and `ledgerd check`
-- names the first entry that breaks it; `ledgerd export` prints the head, which an auditor
-- keeps to prove later that nothing before it changed. The hashes of the entries posted
-- before this migration are computed by ledgerd right after it (the same code).
-- A table of its own, append-only like the journal, rather than a column: a column would
-- need an UPDATE of each existing entry, which the journal's triggers refuse.
CREATE TABLE journal_hashes (
  entry_id  INTEGER PRIMARY KEY REFERENCES journal_entries (id),
  hash      TEXT NOT NULL CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*')
) STRICT;

CREATE TRIGGER journal_hashes_no_update BEFORE UPDATE ON journal_hashes
BEGIN SELECT RAISE(ABORT, 'journal_hashes is append-only'); END;
CREATE TRIGGER journal_hashes_no_delete BEFORE DELETE ON journal_hashes
BEGIN SELECT RAISE(ABORT, 'journal_hashes is append-only'); END;
