import Foundation
import LedgerCore

#if canImport(Glibc)
  import Glibc
#endif

/// A message ready to leave: envelope and data.
public struct Envelope: Sendable, Equatable {
  public let from: String
  public let recipients: [String]
  /// The RFC 5322 message, ASCII, CRLF line ends.
  public let data: String
  /// The outbox key's SHA-256 in hex: names the spool file, so a resend replaces it.
  public let digest: String

  /// A message with its envelope; `data` must already be the rendered message.
  public init(from: String, recipients: [String], data: String, digest: String) {
    self.from = from
    self.recipients = recipients
    self.data = data
    self.digest = digest
  }
}

/// The transport did not take the message. A permanent refusal (an SMTP 5xx to the
/// recipient or the data, a sendmail exit that says the address or message is wrong) is not
/// retried; anything else is, with back-off. A failure of the transport itself (the relay
/// unreachable, refusing the connection or the sender, a timeout, a full disk) is never
/// permanent, and holds back the other messages of the pass too.
public struct DeliveryFailure: Error, CustomStringConvertible, Equatable {
  public let permanent: Bool
  /// The transport, not this message, failed: the other due messages wait as well.
  public let transportWide: Bool
  /// The server's reply or the command's error output, kept on the outbox row.
  public let reply: String

  /// A failure; one of the transport itself is never permanent.
  public init(permanent: Bool, reply: String, transportWide: Bool = false) {
    self.permanent = permanent && !transportWide
    self.transportWide = transportWide
    self.reply = reply
  }

  public var description: String { (permanent ? "refused: " : "temporary failure: ") + reply }
}

/// Hands messages to whatever carries them on.
public protocol MailTransport: Sendable {
  /// Returns once the message is accepted (with the acceptance text, e.g. the SMTP reply);
  /// throws `DeliveryFailure` otherwise, or `CancellationError` when the task is cancelled
  /// (shutdown) before the message was accepted: an abandoned hand-off, not a failure.
  func send(_ envelope: Envelope) async throws -> String
}

/// One `.eml` file per message in a directory, written atomically: a temporary file in the
/// same directory, fsync, rename to `<digest>.eml`, fsync of the directory. A resend of the
/// same outbox row replaces its file, so the spool never holds a message twice.
public struct SpoolTransport: MailTransport {
  public let directory: String

  /// A spool in `directory`, created on the first message if missing.
  public init(directory: String) { self.directory = directory }

  public func send(_ envelope: Envelope) async throws -> String {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      let final = directory + "/" + envelope.digest + ".eml"
      let temporary = directory + "/.tmp-" + envelope.digest + "-\(getpid())"
      try Self.writeSynced(temporary, Array(envelope.data.utf8))
      guard rename(temporary, final) == 0 else {
        let error = errno
        unlink(temporary)
        throw POSIXFailure(operation: "rename to \(final)", code: error)
      }
      let dir = open(directory, O_RDONLY | O_DIRECTORY)
      guard dir >= 0 else { throw POSIXFailure(operation: "open \(directory)", code: errno) }
      defer { close(dir) }
      guard fsync(dir) == 0 else { throw POSIXFailure(operation: "fsync \(directory)", code: errno) }
      return "spooled to \(final)"
    } catch let failure as DeliveryFailure {
      throw failure
    } catch {
      throw DeliveryFailure(permanent: false, reply: String(describing: error), transportWide: true)
    }
  }

  static func writeSynced(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
    guard fd >= 0 else { throw POSIXFailure(operation: "create \(path)", code: errno) }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if written < 0 {
        if errno == EINTR { continue }
        throw POSIXFailure(operation: "write \(path)", code: errno)
      }
      offset += written
    }
    guard fsync(fd) == 0 else { throw POSIXFailure(operation: "fsync \(path)", code: errno) }
  }
}

struct POSIXFailure: Error, CustomStringConvertible {
  let operation: String
  let code: Int32
  var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// Pipes each message to a sendmail-compatible command (`/usr/sbin/sendmail -i -t` by
/// default: recipients from the headers, a lone `.` line is not the end). Exit 0 is
/// acceptance; a non-zero exit is a failure, permanent for the sysexits that say the
/// message or address is wrong (65 EX_DATAERR, which msmtp gives for a 5xx to the
/// recipient or data, and 67 EX_NOUSER), temporary otherwise (msmtp gives 69 for a 4xx,
/// 75 when the relay cannot be reached).
public struct SendmailTransport: MailTransport {
  public let command: [String]
  public let timeoutSeconds: Int

  /// The command with its arguments; a run longer than `timeoutSeconds` is killed and retried.
  public init(command: [String], timeoutSeconds: Int) {
    self.command = command
    self.timeoutSeconds = timeoutSeconds
    // A command that exits without reading its input must not kill ledgerd with SIGPIPE.
    signal(SIGPIPE, SIG_IGN)
  }

  static let permanentStatuses: Set<Int32> = [65, 67]

  public func send(_ envelope: Envelope) async throws -> String {
    guard let program = command.first else {
      throw DeliveryFailure(permanent: false, reply: "no sendmail command configured", transportWide: true)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = Array(command.dropFirst())
    let input = Pipe()
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent(
      "ledgerd-sendmail-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errorFile) }
    let errorHandle = try FileHandle(forWritingTo: errorFile)
    process.standardInput = input
    process.standardOutput = errorHandle
    process.standardError = errorHandle
    do {
      try process.run()
    } catch {
      try? errorHandle.close()
      throw DeliveryFailure(permanent: false, reply: "cannot run \(program): \(error)", transportWide: true)
    }
    try? errorHandle.close()
    // The local convention for a sendmail pipe is LF line ends.
    let data = Data(envelope.data.replacingOccurrences(of: "\r\n", with: "\n").utf8)
    let writer = input.fileHandleForWriting
    do {
      try writer.write(contentsOf: data)
    } catch {
      // The command stopped reading; its exit status says why.
    }
    try? writer.close()
    let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
    while process.isRunning {
      if Task.isCancelled {
        // Shutdown: the hand-off is abandoned, not failed; the row is sent again later.
        Self.stop(process)
        throw CancellationError()
      }
      if ContinuousClock.now > deadline {
        Self.stop(process)
        throw DeliveryFailure(
          permanent: false, reply: "\(program) did not finish within \(timeoutSeconds) s", transportWide: true)
      }
      do {
        try await Task.sleep(for: .milliseconds(5))
      } catch {
        continue  // cancelled: the next turn stops the command
      }
    }
    process.waitUntilExit()
    let output =
      (try? String(contentsOf: errorFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    let status = process.terminationStatus
    if process.terminationReason == .uncaughtSignal {
      throw DeliveryFailure(
        permanent: false, reply: "\(program) killed by signal \(status)" + (output.isEmpty ? "" : ": \(output)"))
    }
    guard status == 0 else {
      throw DeliveryFailure(
        permanent: Self.permanentStatuses.contains(status),
        reply: "\(program) exited \(status)" + (output.isEmpty ? "" : ": \(String(output.suffix(800)))"))
    }
    return "\(program) exited 0"
  }

  /// Ends the command: SIGTERM, then SIGKILL if it has not exited a second later. Returns
  /// once it has exited, without waiting for children it left behind (Foundation reports the
  /// exit only once they close the descriptors they inherited), and after 2 s at most.
  static func stop(_ process: Process) {
    guard process.isRunning else { return }
    let pid = process.processIdentifier
    process.terminate()
    func gone() -> Bool { !process.isRunning || hasExited(pid) }
    var limit = ContinuousClock.now + .seconds(1)
    while !gone() && ContinuousClock.now < limit { usleep(10_000) }
    if gone() { return }
    kill(pid, SIGKILL)
    limit = ContinuousClock.now + .seconds(1)
    while !gone() && ContinuousClock.now < limit { usleep(10_000) }
  }

  /// The process has exited (a zombie not yet reaped, or gone), from `/proc/<pid>/stat`.
  static func hasExited(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
    return state == "Z" || state == "X"
  }
}
