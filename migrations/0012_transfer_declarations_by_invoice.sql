-- Every declaration of an invoice, open or closed, by invoice: whether an invoice already
-- had its clearing window is asked at each declaration, and without this index SQLite read
-- the whole table to answer (the one on open declarations only holds the open ones).
CREATE INDEX transfer_declarations_invoice ON transfer_declarations (invoice_id);
