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
      Every command that opens a ledger takes --db PATH (default ./ledger.db, or $LEDGERD_DB), \
      --config PATH and --lock-timeout SECONDS, before or after the subcommand (ledgerd --db \
      x.db migrate, ledgerd migrate --db x.db); given twice, the last one on the line wins. \
      Commands that print take --json, after the subcommand. Exit status: 0 success; 1 \
      findings (check); 64 bad usage; 65 input refused \
      (nothing was written); 66 the database was refused, is damaged or is missing; 70 internal \
      error; 74 I/O error: disk full, file or folder read-only, the disk failing, or the ledger \
      file replaced under the process (nothing was written); 75 ledger busy: another process \
      held the write lock for the whole wait (nothing was written; run it again). Files ledgerd \
      creates are readable by their owner only (mode 0600, folders 0700), whatever the umask.
      """,
    version: "0.1.0",
    subcommands: [
      Migrate.self, Check.self, Backup.self, Checkpoint.self, PlanCommand.self, AccountCommand.self, CardCommand.self,
      InvoiceCommand.self, TransferCommand.self, PaymentCommand.self, Explain.self, RunDue.self, OutboxCommand.self,
      Serve.self, APIKeyCommand.self, WebhookCommand.self,
      ReconcileCommand.self, Export.self,
    ],
    groupedSubcommands: [
      CommandGroup(name: "Developer", subcommands: [Simulate.self, Benchmark.self, BenchmarkReconcile.self])
    ]
  )

  /// `--db`, `--config` and `--lock-timeout` before the subcommand (`ledgerd --db X migrate`)
  /// or after it: the root takes them wherever they stand on the line, and every subcommand
  /// that opens a ledger includes the same group, which argument-parser fills with the
  /// root's values. No subcommand may declare an option of the same name: the root would
  /// take it first and the subcommand would never see it.
  @OptionGroup var database: DatabaseOptions

  /// The common options the line gave, kept for `main`: the parser returns only the
  /// subcommand, and one that opens no ledger must refuse them rather than ignore them.
  nonisolated(unsafe) private static var commonOptionsGiven: [String] = []

  func validate() throws {
    Self.commonOptionsGiven = database.given
  }

  /// Refuses `--db`, `--config` or `--lock-timeout` on a subcommand that opens no ledger
  /// (`benchmark`, `reconcile parse`, ...), as the parser refused them before the root took
  /// them: silently ignored, `benchmark --db X` would look as if it had used X.
  static func refuseUnusedCommonOptions(_ command: ParsableCommand) throws {
    guard let option = commonOptionsGiven.first, type(of: command)._commandName != "help" else { return }
    let opensLedger = Mirror(reflecting: command).children.contains { $0.value is OptionGroup<DatabaseOptions> }
    guard !opensLedger else { return }
    throw ValidationError("\(option) is not an option of '\(type(of: command)._commandName)', which opens no ledger")
  }

  /// Every file ledgerd creates (the ledger, its WAL, shared-memory and lock files, the
  /// processor's record, the mail spool and its messages, backups, archived statements)
  /// holds customers' data: it is its owner's alone (0600, folders 0700) whatever umask
  /// ledgerd was started with. Then the command line as usual.
  static func main() async {
    umask(0o077)
    do {
      var command = try parseAsRoot()
      try refuseUnusedCommonOptions(command)
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
