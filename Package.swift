// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "ledgerd",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "ledgerd", targets: ["ledgerd"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.21.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
  ],
  targets: [
    // The system libsqlite3, reached through a module map (see Sources/CSQLite).
    .systemLibrary(
      name: "CSQLite",
      pkgConfig: "sqlite3",
      providers: [.apt(["libsqlite3-dev"])]
    ),
    // A thin SQLite layer: connection, statements and their cache, errors, transactions, migrator.
    .target(name: "LedgerSQLite", dependencies: ["CSQLite"]),
    // The domain: money, validation, journal, policies. Pure: no I/O.
    .target(name: "LedgerCore"),
    // The SQL for every entity, with the migrations embedded in the binary.
    .target(
      name: "LedgerStore",
      dependencies: ["LedgerCore", "LedgerSQLite"],
      resources: [.embedInCode("migrations")]
    ),
    // Customer messages: the templates (embedded) and their rendering. Pure: no I/O.
    .target(
      name: "LedgerMail",
      dependencies: ["LedgerCore"],
      resources: [.embedInCode("templates")]
    ),
    // The simulated card processor (the default): its own record of charges, in SQLite.
    .target(name: "LedgerSimulator", dependencies: ["LedgerCore", "LedgerSQLite", "LedgerStore"]),
    // The scheduler, the notifier, reconciliation and the daemon, on the store's repository
    // protocols (declared in LedgerCore); never on SQLite itself.
    .target(
      name: "LedgerEngine",
      dependencies: [
        "LedgerCore", "LedgerStore", "LedgerMail",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Metrics", package: "swift-metrics"),
      ]
    ),
    // The Stripe adapter: PaymentIntents over HTTPS, on the engine's processor interface.
    .target(
      name: "LedgerStripe",
      dependencies: [
        "LedgerCore", "LedgerEngine",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // The HTTP API inside `ledgerd serve`: keys and roles, the resources, Stripe's webhooks in,
    // the metrics and health endpoints, and the OpenAPI document.
    .target(
      name: "LedgerAPI",
      dependencies: [
        "LedgerCore", "LedgerStore", "LedgerEngine",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "HTTPTypes", package: "swift-http-types"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .executableTarget(
      name: "ledgerd",
      dependencies: [
        "LedgerCore", "LedgerStore", "LedgerSQLite", "LedgerSimulator", "LedgerEngine", "LedgerMail", "LedgerStripe",
        "LedgerAPI",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .testTarget(name: "LedgerCoreTests", dependencies: ["LedgerCore"]),
    .testTarget(name: "LedgerMailTests", dependencies: ["LedgerMail", "LedgerCore"]),
    .testTarget(name: "LedgerSQLiteTests", dependencies: ["LedgerSQLite", "CSQLite", "LedgerCore"]),
    .testTarget(name: "LedgerStoreTests", dependencies: ["LedgerStore", "LedgerCore", "LedgerSQLite"]),
    .testTarget(
      name: "LedgerEngineTests",
      dependencies: ["LedgerEngine", "LedgerSimulator", "LedgerStore", "LedgerCore", "LedgerSQLite", "LedgerMail"]),
    .testTarget(name: "LedgerStripeTests", dependencies: ["LedgerStripe", "LedgerCore"]),
    .testTarget(name: "LedgerCLITests", dependencies: ["ledgerd", "LedgerSQLite", "LedgerCore"]),
  ],
  swiftLanguageModes: [.v6]
)
