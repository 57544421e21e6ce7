import ArgumentParser

/// The `ledgerd` command tree.
@main
struct Ledgerd: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ledgerd",
    abstract: "A billing ledger: accounts, cards, invoices, charges and dunning in one SQLite file.",
    discussion: """
      Every command takes --db PATH (default ./ledger.db, or $LEDGERD_DB). Commands that print
      take --json. Exit status: 0 success; 1 findings (check); 64 bad usage; 65 input refused
      (nothing was written); 66 the database was refused or is missing; 70 internal error;
      75 ledger busy: another process held the write lock for the whole wait (nothing was
      written; run it again).
      """,
    version: "0.1.0",
    subcommands: [
      Migrate.self, Check.self, Backup.self, Checkpoint.self, PlanCommand.self, AccountCommand.self, CardCommand.self,
      InvoiceCommand.self, TransferCommand.self, PaymentCommand.self, Explain.self, RunDue.self, OutboxCommand.self, Serve.self,
      ReconcileCommand.self, Simulate.self, Benchmark.self, BenchmarkReconcile.self,
    ]
  )
}
