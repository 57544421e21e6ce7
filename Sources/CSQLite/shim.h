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

/// The WAL index's header, read from the shared memory that `db`'s connection has mapped
/// (the wal-index format of https://sqlite.org/walformat.html): `frames` is the WAL's
/// valid frame count (mxFrame), `backfilled` how many of them are already copied into the
/// database file (nBackfill). SQLITE_BUSY when the two copies of the header differ (a
/// commit is writing it), SQLITE_NOTFOUND when there is no initialized WAL index. Read
/// through the VFS's own mapping: opening and closing the -shm file here would drop the
/// POSIX locks SQLite holds on it for this process.
/// The connection's own handle on its main database file (the VFS's), or an error code.
static inline int ledgerd_main_file(sqlite3 *db, sqlite3_file **file) {
  *file = 0;
  int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, file);
  if (rc != SQLITE_OK) return rc;
  return (*file && (*file)->pMethods) ? SQLITE_OK : SQLITE_NOTFOUND;
}

static inline int ledgerd_wal_index_frames(sqlite3 *db, unsigned int *frames, unsigned int *backfilled) {
  sqlite3_file *file = 0;
  int rc = ledgerd_main_file(db, &file);
  if (rc != SQLITE_OK) return rc;
  if (file->pMethods->iVersion < 2 || !file->pMethods->xShmMap) return SQLITE_NOTFOUND;
  volatile void *region = 0;
  rc = file->pMethods->xShmMap(file, 0, 32768, 0, &region);
  if (rc != SQLITE_OK) return rc;
  if (!region) return SQLITE_NOTFOUND;
  const volatile unsigned int *words = (const volatile unsigned int *)region;
  const volatile unsigned char *bytes = (const volatile unsigned char *)region;
  for (int i = 0; i < 12; i++) {
    if (words[i] != words[12 + i]) return SQLITE_BUSY;
  }
  if (words[0] != 3007000 || bytes[12] != 1) return SQLITE_NOTFOUND;
  *frames = words[4];
  *backfilled = words[24];
  return SQLITE_OK;
}

/// Syncs the database file through the connection's own file handle (the VFS's xSync):
/// writes a checkpoint copied into it reach the disk without holding anything.
static inline int ledgerd_sync_database_file(sqlite3 *db) {
  sqlite3_file *file = 0;
  int rc = ledgerd_main_file(db, &file);
  if (rc != SQLITE_OK) return rc;
  if (!file->pMethods->xSync) return SQLITE_NOTFOUND;
  return file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
}

#endif
