#ifndef LEDGERD_CSQLITE_SHIM_H
#define LEDGERD_CSQLITE_SHIM_H

#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast of -1 to a function pointer, which Swift cannot import
/// as a constant; this returns it so bound text is copied by SQLite before the call returns.
static inline sqlite3_destructor_type ledgerd_sqlite_transient(void) {
  return SQLITE_TRANSIENT;
}

/// sqlite3_db_config is variadic and cannot be called from Swift; these wrap the
/// options ledgerd sets on every connection.
static inline int ledgerd_db_config_defensive(sqlite3 *db, int on) {
  return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, (int *)0);
}

static inline int ledgerd_db_config_dqs_off(sqlite3 *db) {
  int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)0);
  if (rc != SQLITE_OK) return rc;
  return sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)0);
}

/// Without a checkpoint at close: the closing connection may not be able to take the
/// write lock that every checkpoint must run under, so it leaves the WAL for a later one.
static inline int ledgerd_db_config_no_checkpoint_on_close(sqlite3 *db) {
  return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

/// Turns off SQLite's memory statistics, which take a process-wide mutex on every
/// allocation. Only takes effect before SQLite is initialized (before the first open).
static inline int ledgerd_config_memstatus_off(void) {
  return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#endif
