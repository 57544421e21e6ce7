import ArgumentParser

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The `ledgerd` command tree.
@main
struct Ledgerd: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ledgerd",
    abstract: "A billing ledger: accounts, cards, invoices, charges and dunning in one SQLite file.",
    discussion: """
      Every command takes --db PATH (default ./ledger.db, or $LEDGERD_DB). Commands that print \
      take --json. Exit status: 0 success; 1 findings (check); 64 bad usage; 65 input refused \
      (nothing was written); 66 the database was refused, is damaged or is missing; 70 internal \
      error; 74 I/O error: disk full, file or folder read-only, the disk failing, or the ledger \
      file replaced under the process (nothing was written); 75 ledger busy: another process \
      held the write lock for the whole wait (nothing was written; run it again). Files ledgerd \
      creates are readable by their owner only (mode 0600, folders 0700), whatever the umask.
      """,
    version: "0.1.0",
    subcommands: [
      Migrate.self, Check.self, Backup.self, Checkpoint.self, PlanCommand.self, AccountCommand.self, CardCommand.self,
      InvoiceCommand.self, TransferCommand.self, PaymentCommand.self, Explain.self, RunDue.self, OutboxCommand.self, Serve.self,
      ReconcileCommand.self, Export.self, Simulate.self, Benchmark.self, BenchmarkReconcile.self,
    ]
  )

  /// Every file ledgerd creates (the ledger, its WAL, shared-memory and lock files, the
  /// processor's record, the mail spool and its messages, backups, archived statements)
  /// holds customers' data: it is its owner's alone (0600, folders 0700) whatever umask
  /// ledgerd was started with. Then the command line as usual.
  static func main() async {
    umask(0o077)
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      exit(withError: error)
    }
  }
}
