import ArgumentParser
import LedgerCore
import LedgerStore

struct APIKeyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "api-key", abstract: "Keys for the HTTP API: created with a role, shown once, revoked.",
    subcommands: [Create.self, List.self, Revoke.self])

  struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a key; it is printed once and only its SHA-256 is kept.",
      discussion:
        "customer: a dashboard acting for one customer, on that account only (--account); staff: what the command line does; read: reads only. Every change a key makes is an event whose actor is its role (customer or staff) and whose reason names the key."
    )
    @Argument(help: "A name for the key (letters, digits, '-', '_', '.').") var name: String
    @Option(help: "customer, staff or read.") var role: String
    @Option(help: "The account a customer key acts for.") var account: String?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Created: Encodable {
      let key: APIKey
      let secret: String
    }

    func run() throws {
      try runGuarded {
        guard let role = APIRole(rawValue: role) else {
          throw InputError(field: "--role", rule: "'\(role)' must be one of customer, staff, read")
        }
        let account = try account.map { try parseID($0, field: "--account") }
        let (key, secret) = try database.open(.readWrite).createAPIKey(name: name, role: role, account: account)
        try output.emit(Created(key: key, secret: secret)) {
          "API key '\(key.name)' (\(key.role.rawValue)\(key.accountID.map { ", account \($0)" } ?? "")) created; it is shown this once:\n\(secret)"
        }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the keys (never the keys themselves).")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let keys = try database.open(.readOnly).apiKeys()
        try output.emit(keys) {
          table(
            ["ID", "NAME", "ROLE", "ACCOUNT", "PREFIX", "CREATED", "REVOKED"],
            keys.map {
              [
                String($0.id), $0.name, $0.role.rawValue, $0.accountID.map(String.init) ?? "", $0.prefix + "…",
                $0.createdAt, $0.revokedAt ?? "",
              ]
            })
        }
      }
    }
  }

  struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Revoke a key: requests with it are refused at once.")
    @Argument(help: "The key's name or id.") var key: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let key = try database.open(.readWrite).revokeAPIKey(key)
        try output.emit(key) { "API key '\(key.name)' revoked" }
      }
    }
  }
}
