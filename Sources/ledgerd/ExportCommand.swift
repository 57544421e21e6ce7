import ArgumentParser
import Foundation
import LedgerCore
import LedgerStore

/// `ledgerd export`: the journal for an accountant's own tools.
struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Write the journal as an hledger or beancount journal, with balance assertions equal to the ledger's balances.",
    discussion:
      "One transaction per journal entry (its date, its id, its memo, one posting per line), every account and commodity declared, the balances before --from as an opening entry, and a balance assertion per account and currency at the end of the range, so that `hledger check --strict` and `bean-check` verify the books. The last line names the journal's head (the newest entry and its hash in the chain `ledgerd check` verifies): keep it to prove later that nothing before it changed. Streamed from one read snapshot, in bounded memory."
  )

  @Argument(help: "hledger or beancount (default hledger; --format says the same).") var formatName: String?
  @Option(name: .customLong("format"), help: "hledger or beancount.") var formatOption: String?
  @Option(help: "The first day exported (YYYY-MM-DD); what came before is an opening entry.") var from: String?
  @Option(help: "The last day exported (YYYY-MM-DD, included); the balance assertions are at its end.") var to: String?
  @Option(help: "Write to this file (replaced whole, once complete) instead of standard output.") var output: String?
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var print: OutputOptions

  func run() throws {
    try runGuarded {
      let names = [formatName, formatOption].compactMap { $0 }
      guard Set(names).count <= 1 else {
        throw InputError(
          field: "--format", rule: "'\(formatOption ?? "")' differs from the format argument '\(formatName ?? "")'")
      }
      let name = names.first ?? "hledger"
      guard let format = ExportFormat(rawValue: name) else {
        throw InputError(field: "format", rule: "'\(name)' must be hledger or beancount")
      }
      let first = try from.map { try CivilDate(iso8601: $0, field: "--from") }
      let last = try to.map { try CivilDate(iso8601: $0, field: "--to") }
      if let first, let last, last < first {
        throw InputError(field: "--to", rule: "\(last) is before --from \(first)")
      }
      if print.json && output == nil {
        throw InputError(
          field: "--json", rule: "prints the export's summary, so it needs --output FILE for the journal itself")
      }
      let store = try database.open(.readOnly)
      let sink = try ExportSink(path: output)
      let summary: ExportSummary
      do {
        summary = try store.exportJournal(format: format, from: first, to: last) { try sink.write($0) }
        try sink.finish()
      } catch {
        sink.abandon()
        throw error
      }
      let head = summary.headEntry.map { "entry \($0), hash \(summary.headHash ?? "")" } ?? "no entry yet"
      let text =
        "exported \(summary.entries) entries (\(summary.postings) postings, \(summary.accounts) accounts, "
        + "\(summary.balanceAssertions) balance assertions) as \(format.rawValue)\(output.map { " to \($0)" } ?? ""); journal head: \(head)"
      if output == nil {
        // Standard output holds the journal: the summary goes to standard error.
        FileHandle.standardError.write(Data((text + "\n").utf8))
      } else {
        try print.emit(summary) { text }
      }
    }
  }
}

/// Where the export goes: standard output, or a temporary file beside `path` renamed into
/// place once complete (a reader never sees half a journal), written in 64 KiB pieces.
final class ExportSink {
  private let path: String?
  private let temporary: String?
  private let handle: FileHandle
  private var buffer: [UInt8] = []

  init(path: String?) throws {
    self.path = path
    guard let path else {
      temporary = nil
      handle = FileHandle.standardOutput
      return
    }
    let temporary = path + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
    guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
      throw InputError(field: "--output", rule: "\(path) cannot be written (its folder is missing or read-only)")
    }
    self.temporary = temporary
    handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
    buffer.reserveCapacity(1 << 16)
  }

  func write(_ text: String) throws {
    buffer += text.utf8
    if buffer.count >= 1 << 16 { try flush() }
  }

  private func flush() throws {
    guard !buffer.isEmpty else { return }
    try handle.write(contentsOf: buffer)
    buffer.removeAll(keepingCapacity: true)
  }

  /// Writes what is left and, for a file, puts it in place.
  func finish() throws {
    try flush()
    guard let path, let temporary else { return }
    try handle.synchronize()
    try handle.close()
    if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    try FileManager.default.moveItem(atPath: temporary, toPath: path)
  }

  /// Removes the partial file after a failure.
  func abandon() {
    guard let temporary else { return }
    try? handle.close()
    try? FileManager.default.removeItem(atPath: temporary)
  }
}
