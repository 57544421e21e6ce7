import Foundation
import Testing

/// The unit files in `systemd/`, checked with the host's `systemd-analyze` (systemd 252 on
/// the build machines and in CI) against the built `ledgerd` binary.
@Suite(.serialized) struct SystemdTests {
  static let units = ["ledgerd.service", "ledgerd-reconcile.service", "ledgerd-reconcile.timer"]
  static let services = ["ledgerd.service", "ledgerd-reconcile.service"]
  static let installedBinary = "/usr/local/bin/ledgerd"

  /// `systemd/` in the package, found from this file's path.
  static let sourceDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("systemd").path

  /// `systemd-analyze` verifies the unit files as they stand, with no system state: there is
  /// no skipping when it is missing, because then the units would go unchecked.
  static func systemdAnalyze() throws -> String {
    let candidates =
      ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
      + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/systemd-analyze" }
    guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
      throw Failure(
        "systemd-analyze is not installed (looked in /usr/bin and $PATH); the systemd unit files cannot be checked without it. Install systemd (apt-get install systemd)."
      )
    }
    return path
  }

  /// Copies the three units into `w`, with the installed binary's path replaced by the
  /// built one: `verify` checks that every ExecStart= program exists and is executable.
  static func install(into w: Workspace) throws -> String {
    let binary = Workspace.binary
    guard FileManager.default.isExecutableFile(atPath: binary) else {
      throw Failure("the built ledgerd binary is missing at \(binary); build with --build-tests first")
    }
    // ExecStart= splits on whitespace unless the word is quoted.
    let replacement = binary.contains(where: \.isWhitespace) ? "\"\(binary)\"" : binary
    let directory = w.directory + "/units"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for unit in units {
      let text = try String(contentsOfFile: sourceDirectory + "/" + unit, encoding: .utf8)
      #expect(text.contains(installedBinary) || unit.hasSuffix(".timer"), "\(unit) does not run \(installedBinary)")
      try text.replacingOccurrences(of: installedBinary, with: replacement)
        .write(toFile: directory + "/" + unit, atomically: true, encoding: .utf8)
    }
    return directory
  }

  /// The lines of `output` that are about our units. `systemd-analyze verify` exits 0 on
  /// most problems it finds (unknown keys, unparsable values, a timer's bad setting are
  /// "…, ignoring." warnings), so every line it prints counts as a finding, with one
  /// exception: a line that names a unit file outside our directory and none of our unit
  /// names is about the host's own units (verify also loads the targets ours are ordered
  /// after or wanted by, e.g. local-fs.target, and a distribution's unit can carry its own
  /// warnings) and says nothing about ours. On systemd 252 here it prints nothing at all.
  static func findings(_ output: String, directory: String) -> [String] {
    output.split(whereSeparator: \.isNewline).map(String.init).filter { line in
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.isEmpty { return false }
      let aboutOurs = line.contains(directory) || units.contains { line.contains($0) }
      let aboutHostFile = trimmed.hasPrefix("/") && !trimmed.hasPrefix(directory)
      return aboutOurs || !aboutHostFile
    }
  }

  @Test func unitsVerifyCleanly() throws {
    let analyze = try Self.systemdAnalyze()
    let w = try Workspace()
    let directory = try Self.install(into: w)
    let outcome = try w.run(analyze, ["verify", "--man=no"] + Self.units.map { directory + "/" + $0 })
    let output = outcome.stdout + outcome.stderr
    #expect(outcome.status == 0, "systemd-analyze verify exited \(outcome.status):\n\(output)")
    let findings = Self.findings(output, directory: directory)
    #expect(findings.isEmpty, "systemd-analyze verify warned:\n\(findings.joined(separator: "\n"))")
  }

  /// A unit with a mistake in it must be caught, or `unitsVerifyCleanly` proves nothing:
  /// verify still exits 0 here, and only the warning line tells.
  @Test func verifyWarningsAreCaught() throws {
    let analyze = try Self.systemdAnalyze()
    let w = try Workspace()
    let directory = try Self.install(into: w)
    let path = directory + "/ledgerd.service"
    let text = try String(contentsOfFile: path, encoding: .utf8)
    try text.replacingOccurrences(of: "WatchdogSec=30s", with: "WatchdogSec=thirty")
      .write(toFile: path, atomically: true, encoding: .utf8)
    let outcome = try w.run(analyze, ["verify", "--man=no", path])
    let findings = Self.findings(outcome.stdout + outcome.stderr, directory: directory)
    #expect(
      findings.contains { $0.contains("ledgerd.service") && $0.contains("thirty") },
      "\(outcome.stdout)\(outcome.stderr)")
  }

  /// `systemd-analyze security` scores the sandbox from 0 (locked down) to 10 (exposed).
  @Test(arguments: services) func exposure(unit: String) throws {
    let analyze = try Self.systemdAnalyze()
    let w = try Workspace()
    let directory = try Self.install(into: w)
    let outcome = try w.run(analyze, ["security", "--offline=true", "--no-pager", directory + "/" + unit])
    #expect(
      outcome.status == 0, "systemd-analyze security exited \(outcome.status):\n\(outcome.stdout)\(outcome.stderr)")
    let exposure = try #require(
      Self.overallExposure(outcome.stdout), "no overall exposure in:\n\(outcome.stdout)\(outcome.stderr)")
    print("systemd-analyze security: \(unit) overall exposure \(exposure)")
    #expect(exposure <= 2.0, "\(unit) exposure \(exposure) > 2.0:\n\(outcome.stdout)")
  }

  /// "→ Overall exposure level for ledgerd.service: 0.2 SAFE 😀" → 0.2
  static func overallExposure(_ output: String) -> Double? {
    for line in output.split(whereSeparator: \.isNewline) where line.contains("Overall exposure level") {
      guard let colon = line.lastIndex(of: ":") else { continue }
      let number = line[line.index(after: colon)...].drop(while: \.isWhitespace).prefix { $0.isNumber || $0 == "." }
      if let value = Double(number) { return value }
    }
    return nil
  }

  /// The settings the daemon's contract depends on, which a lower exposure score would not
  /// notice going missing.
  @Test func daemonUnitKeepsItsContract() throws {
    let text = try String(contentsOfFile: Self.sourceDirectory + "/ledgerd.service", encoding: .utf8)
    let lines = Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) })
    for setting in [
      "Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=on-failure", "TimeoutStopSec=15s",
      "StateDirectory=ledgerd", "StateDirectoryMode=0700", "DynamicUser=yes", "User=ledgerd",
      "ExecStart=/usr/local/bin/ledgerd serve --db /var/lib/ledgerd/ledger.db",
      "MemoryDenyWriteExecute=yes", "PrivateNetwork=yes", "RestrictAddressFamilies=AF_UNIX",
    ] {
      #expect(lines.contains(setting), "ledgerd.service lacks \(setting)")
    }
    let reconcile = try String(contentsOfFile: Self.sourceDirectory + "/ledgerd-reconcile.service", encoding: .utf8)
    #expect(
      reconcile.contains("\nUser=ledgerd\n"), "the reconcile job must run as the daemon's user to share its files")
    #expect(reconcile.contains("\nType=oneshot\n"))
  }

  /// The daemon's unit with `systemd/ledgerd.service.d/NAME.example` installed as a drop-in:
  /// the drop-in's text, and what `systemd-analyze security` printed.
  func analyzeWithDropIn(_ name: String) throws -> (dropIn: String, output: String, exposure: Double) {
    let analyze = try Self.systemdAnalyze()
    let w = try Workspace()
    let units = try Self.install(into: w)
    let root = w.directory + "/root"
    let system = root + "/etc/systemd/system"
    try FileManager.default.createDirectory(atPath: system + "/ledgerd.service.d", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: units + "/ledgerd.service", toPath: system + "/ledgerd.service")
    let dropIn = try String(
      contentsOfFile: Self.sourceDirectory + "/ledgerd.service.d/\(name).example", encoding: .utf8)
    try dropIn.write(toFile: system + "/ledgerd.service.d/\(name)", atomically: true, encoding: .utf8)
    let outcome = try w.run(
      analyze, ["security", "--offline=true", "--root=" + root, "--no-pager", "ledgerd.service"])
    #expect(outcome.status == 0, "\(outcome.stdout)\(outcome.stderr)")
    let exposure = try #require(Self.overallExposure(outcome.stdout), "\(outcome.stdout)\(outcome.stderr)")
    print("systemd-analyze security: ledgerd.service with \(name), overall exposure \(exposure)")
    return (dropIn, outcome.stdout, exposure)
  }

  /// The Stripe drop-in (`systemd/ledgerd.service.d/stripe.conf.example`) applied to the
  /// daemon's unit: the network it opens raises the exposure, which stays at 2.0 or below;
  /// the key comes in as a credential.
  @Test func stripeDropInKeepsTheExposureLow() throws {
    let (dropIn, output, exposure) = try analyzeWithDropIn("stripe.conf")
    #expect(dropIn.contains("\nLoadCredential=stripe-key:/etc/ledgerd/stripe-key\n"))
    // The drop-in was read (the network is open) and the rest of the sandbox holds.
    #expect(output.contains("Service has access to the host's network"), "\(output)")
    #expect(exposure > 0.2 && exposure <= 2.0, "exposure \(exposure):\n\(output)")
  }

  /// The drop-in that gives the API's socket to a dashboard's group: the daemon joins the
  /// group outside a private user namespace; the exposure stays at 2.0 or below.
  @Test func dashboardSocketDropInKeepsTheExposureLow() throws {
    let (dropIn, output, exposure) = try analyzeWithDropIn("dashboard-socket.conf")
    #expect(dropIn.contains("\nSupplementaryGroups=ledgerd-dashboard\n"))
    #expect(output.contains("Service runs with supplementary groups"), "\(output)")
    #expect(exposure > 0.2 && exposure <= 2.0, "exposure \(exposure):\n\(output)")
  }
}
