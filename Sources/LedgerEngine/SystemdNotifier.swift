import Foundation
import LedgerStore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Speaks systemd's notify protocol without libsystemd: each message is one datagram of
/// `KEY=VALUE` lines sent to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract
/// socket when it starts with `@`). Without `$NOTIFY_SOCKET` every call does nothing.
public struct SystemdNotifier: Sendable {
  public let socketPath: String?
  /// Half of `$WATCHDOG_USEC`, when systemd asks this process for keep-alive pings.
  public let watchdogInterval: Duration?

  public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
    socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    let pidMatches = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
    if pidMatches, let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
      watchdogInterval = .microseconds(Int64(usec / 2))
    } else {
      watchdogInterval = nil
    }
  }

  public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
  public func status(_ text: String) { send("STATUS=\(text)") }
  public func watchdog() { send("WATCHDOG=1") }
  public func stopping() { send("STOPPING=1\nSTATUS=stopping") }

  /// Sends one datagram; failures are ignored, as systemd's own client does.
  @discardableResult
  public func send(_ message: String) -> Bool {
    guard let socketPath else { return false }
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    var pathBytes = Array(socketPath.utf8)
    if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // abstract namespace
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard pathBytes.count < capacity else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      raw.copyBytes(from: pathBytes)
    }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
    let sent = message.utf8CString.withUnsafeBufferPointer { buffer in
      withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
          sendto(fd, buffer.baseAddress, buffer.count - 1, Int32(MSG_NOSIGNAL), sa, length)
        }
      }
    }
    return sent >= 0
  }
}

/// The single-instance lock of `ledgerd serve`: an exclusive `flock` on a file beside the
/// database, held for the life of the process (the kernel releases it if the process dies,
/// even by SIGKILL).
public final class InstanceLock: @unchecked Sendable {
  private let fd: Int32
  public let path: String

  /// Why the lock could not be taken.
  public struct Held: Error, CustomStringConvertible {
    public let path: String
    public let holder: String
    public var description: String {
      "another ledgerd serve already runs on this database (lock \(path) held\(holder.isEmpty ? "" : " by pid \(holder)")); refusing to start a second one"
    }
  }

  /// Takes the lock or throws `Held`. It retries for a quarter of a second only, so that
  /// a one-shot command's probe (`isHeld`) of the same moment is not taken for a daemon.
  public init(databasePath: String) throws {
    path = databasePath + ".instance.lock"
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw Held(path: path, holder: "") }
    var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
    for _ in 0..<25 where !locked {
      usleep(10_000)
      locked = flock(fd, LOCK_EX | LOCK_NB) == 0
    }
    if !locked {
      var buffer = [UInt8](repeating: 0, count: 32)
      let n = pread(fd, &buffer, 32, 0)
      let holder =
        n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
      close(fd)
      throw Held(path: path, holder: holder)
    }
    let pid = Array("\(getpid())\n".utf8)
    _ = ftruncate(fd, 0)
    _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, pid.count, 0) }
  }

  deinit {
    flock(fd, LOCK_UN)
    close(fd)
  }

  /// Whether a `ledgerd serve` holds the instance lock of the database at `databasePath`
  /// (a non-blocking probe; a one-shot command checkpoints only when none does).
  public static func isHeld(databasePath: String) -> Bool {
    LedgerStore.isServed(path: databasePath)
  }
}
