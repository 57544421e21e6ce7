import LedgerMail
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// An SMTP client for a relay (RFC 5321): EHLO, STARTTLS when configured (the server's
/// certificate checked against the system's roots, or `caFile`), AUTH PLAIN when a username is set,
/// then MAIL FROM, RCPT TO, DATA with dot-stuffing, and QUIT. Every reply code is
/// checked: 4xx and lost connections are temporary, 5xx permanent. One connection per
/// message; every connect and every reply has a timeout.
public struct SMTPTransport: MailTransport {
  public var host: String
  public var port: Int
  public var startTLS: Bool
  /// PEM certificates to trust instead of the system's roots.
  public var caFile: String?
  public var username: String?
  public var password: String?
  public var helo: String
  public var timeoutSeconds: Int

  /// A client for the relay at `host`:`port`; AUTH PLAIN only when both credentials are set.
  public init(
    host: String, port: Int, startTLS: Bool, caFile: String? = nil, username: String?, password: String?, helo: String,
    timeoutSeconds: Int
  ) {
    self.host = host
    self.port = port
    self.startTLS = startTLS
    self.caFile = caFile
    self.username = username
    self.password = password
    self.helo = helo
    self.timeoutSeconds = timeoutSeconds
  }

  public func send(_ envelope: Envelope) async throws -> String {
    let timeout = TimeAmount.seconds(Int64(timeoutSeconds))
    let channel: NIOAsyncChannel<SMTPReply, ByteBuffer>
    let (host, port) = (host, port)
    do {
      // NIO's connect does not answer cancellation: at shutdown it is abandoned (and the
      // connection closed if it is made after all) rather than waited for.
      channel = try await Self.unlessCancelled {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
          .connectTimeout(timeout)
          .connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
              try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: timeout))
              try channel.pipeline.syncOperations.addHandler(ReadTimeoutHandler())
              try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
              return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
          }
      } abandoned: { channel in
        channel.channel.close(promise: nil)
      }
    } catch {
      if error is CancellationError || Task.isCancelled { throw CancellationError() }
      throw DeliveryFailure(permanent: false, reply: "cannot connect to \(host):\(port): \(error)", transportWide: true)
    }
    do {
      // At shutdown the conversation is cut short: closing the channel ends any wait for a
      // reply at once, and the message counts as not accepted.
      return try await withTaskCancellationHandler {
        try await send(envelope, on: channel)
      } onCancel: {
        channel.channel.close(promise: nil)
      }
    } catch {
      if Task.isCancelled { throw CancellationError() }
      throw error
    }
  }

  func send(_ envelope: Envelope, on channel: NIOAsyncChannel<SMTPReply, ByteBuffer>) async throws -> String {
    do {
      return try await channel.executeThenClose { inbound, outbound in
        var session = Session(replies: inbound.makeAsyncIterator(), outbound: outbound)
        try await session.expect(nil, 220...220, step: "greeting")
        var hello = try await session.expect("EHLO \(helo)", 250...250, step: "EHLO")
        if startTLS {
          guard hello.lines.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
            throw DeliveryFailure(
              permanent: false, reply: "\(host):\(port) does not offer STARTTLS, which the config requires",
              transportWide: true)
          }
          try await session.expect("STARTTLS", 220...220, step: "STARTTLS")
          var tls = TLSConfiguration.makeClientConfiguration()
          if let caFile { tls.trustRoots = .file(caFile) }
          let context = try NIOSSLContext(configuration: tls)
          let serverName = host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : host
          let raw = channel.channel
          try await raw.eventLoop.submit {
            try raw.pipeline.syncOperations.addHandler(
              try NIOSSLClientHandler(context: context, serverHostname: serverName), position: .first)
          }.get()
          hello = try await session.expect("EHLO \(helo)", 250...250, step: "EHLO after STARTTLS")
        }
        if let username, let password {
          guard hello.lines.contains(where: { $0.uppercased().hasPrefix("AUTH") && $0.uppercased().contains("PLAIN") })
          else {
            throw DeliveryFailure(
              permanent: false, reply: "\(host):\(port) does not offer AUTH PLAIN", transportWide: true)
          }
          let token = Base64.encode([0] + Array(username.utf8) + [0] + Array(password.utf8))
          try await session.expect("AUTH PLAIN \(token)", 235...235, step: "AUTH PLAIN")
        }
        try await session.expect("MAIL FROM:<\(envelope.from)>", 250...250, step: "MAIL FROM")
        for recipient in envelope.recipients {
          try await session.expect(
            "RCPT TO:<\(recipient)>", 250...251, step: "RCPT TO <\(recipient)>", perMessage: true)
        }
        try await session.expect("DATA", 354...354, step: "DATA", perMessage: true)
        let accepted = try await session.expect(
          Self.dotStuffed(envelope.data) + ".", 250...250, step: "end of data", perMessage: true)
        _ = try? await session.expect("QUIT", 221...221, step: "QUIT")
        return accepted.text
      }
    } catch let failure as DeliveryFailure {
      throw failure
    } catch {
      throw DeliveryFailure(permanent: false, reply: "\(host):\(port): \(error)", transportWide: true)
    }
  }

  /// The result of `operation`, or `CancellationError` as soon as the calling task is
  /// cancelled, without waiting for `operation`, whose late result goes to `abandoned`.
  static func unlessCancelled<T: Sendable>(
    _ operation: @escaping @Sendable () async throws -> T, abandoned: @escaping @Sendable (T) -> Void
  ) async throws -> T {
    let waiter = Waiter<T>()
    @Sendable func finish(_ result: Result<T, Error>) -> Bool {
      let continuation: CheckedContinuation<T, Error>? = waiter.state.withLock { state in
        if state.done { return nil }
        guard let continuation = state.continuation else {
          // Cancelled before the continuation was stored: mark it so that it resumes at once.
          if case .failure = result { state.done = true }
          return nil
        }
        state.done = true
        state.continuation = nil
        return continuation
      }
      guard let continuation else { return false }
      continuation.resume(with: result)
      return true
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let cancelledAlready = waiter.state.withLock { state in
          if state.done { return true }
          state.continuation = continuation
          return false
        }
        if cancelledAlready {
          continuation.resume(throwing: CancellationError())
          return
        }
        Task {
          do {
            let value = try await operation()
            if !finish(.success(value)) { abandoned(value) }
          } catch {
            _ = finish(.failure(error))
          }
        }
      }
    } onCancel: {
      _ = finish(.failure(CancellationError()))
    }
  }

  final class Waiter<T: Sendable>: Sendable {
    let state = Mutex<(continuation: CheckedContinuation<T, Error>?, done: Bool)>((nil, false))
  }

  /// The message with every line that starts with `.` given one more (RFC 5321 4.5.2),
  /// CRLF line ends, ending with CRLF.
  static func dotStuffed(_ data: String) -> String {
    var lines = data.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    return lines.map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n") + "\r\n"
  }

  /// A command and its reply.
  struct Session {
    var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// Sends `command` (nil: only reads, for the greeting) and requires a reply in `codes`.
    @discardableResult
    /// A refusal of `perMessage` steps (RCPT TO, DATA) concerns this message only; one of
    /// the others (greeting, EHLO, STARTTLS, AUTH, MAIL FROM) concerns the relay.
    mutating func expect(_ command: String?, _ codes: ClosedRange<Int>, step: String, perMessage: Bool = false)
      async throws
      -> SMTPReply
    {
      if let command {
        do {
          try await outbound.write(ByteBuffer(string: command + "\r\n"))
        } catch {
          // The channel closed under us; its inbound side says why (a TLS handshake that
          // failed, a timeout), which is the reply worth keeping.
          _ = try await replies.next()
          throw error
        }
      }
      guard let reply = try await replies.next() else {
        throw DeliveryFailure(permanent: false, reply: "connection closed at \(step)", transportWide: true)
      }
      guard codes.contains(reply.code) else {
        throw DeliveryFailure(
          permanent: (500...599).contains(reply.code), reply: "\(step): \(reply.text)", transportWide: !perMessage)
      }
      return reply
    }
  }
}

/// One SMTP reply: its code and the text of each of its lines.
struct SMTPReply: Sendable, Equatable {
  let code: Int
  let lines: [String]
  var text: String { lines.map { "\(code) \($0)" }.joined(separator: " / ") }
}

/// Gathers `NNN-…` continuation lines up to the `NNN …` line into one reply.
final class SMTPReplyDecoder: ByteToMessageDecoder {
  typealias InboundOut = SMTPReply
  private var lines: [String] = []

  func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
    let view = buffer.readableBytesView
    guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
      if buffer.readableBytes > 8_192 {
        throw DeliveryFailure(permanent: false, reply: "reply line longer than 8 KiB", transportWide: true)
      }
      return .needMoreData
    }
    let length = newline - view.startIndex + 1
    guard var line = buffer.readString(length: length) else { return .needMoreData }
    while line.last == "\n" || line.last == "\r" || line.last == "\r\n" { line.removeLast() }
    let bytes = Array(line.utf8)
    guard bytes.count >= 3, bytes[0..<3].allSatisfy({ (48...57).contains($0) }),
      let code = Int(String(decoding: bytes[0..<3], as: UTF8.self))
    else {
      throw DeliveryFailure(permanent: false, reply: "not an SMTP reply: \(line.prefix(200))", transportWide: true)
    }
    lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
    if bytes.count > 3, bytes[3] == UInt8(ascii: "-") { return .continue }
    let reply = SMTPReply(code: code, lines: lines)
    lines = []
    context.fireChannelRead(wrapInboundOut(reply))
    return .continue
  }

  func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
    while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
    return .needMoreData
  }
}

/// Turns the idle handler's read timeout into an error that ends the conversation.
final class ReadTimeoutHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
      context.fireErrorCaught(
        DeliveryFailure(permanent: false, reply: "no reply within the timeout", transportWide: true))
      context.close(promise: nil)
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }
}
