// swift-tools-version:6.2

import PackageDescription

// MARK: - Dependencies

let dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
    .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
    .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
    .package(url: "https://github.com/apple/swift-openapi-urlsession.git", from: "1.4.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
]

let package = Package(
    name: "Loyalty",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LoyaltyCore", targets: ["LoyaltyCore"]),
        .library(name: "LoyaltyAPI", targets: ["LoyaltyAPI"]),
        .library(name: "LoyaltyServer", targets: ["LoyaltyServer"]),
        .library(name: "LoyaltyStore", targets: ["LoyaltyStore"]),
        .library(name: "LoyaltySync", targets: ["LoyaltySync"]),
        .executable(name: "loyalty-server", targets: ["loyalty-server"]),
        .executable(name: "loyalty", targets: ["loyalty"]),
        .executable(name: "loyalty-sim", targets: ["loyalty-sim"]),
        .executable(name: "loyalty-bench", targets: ["loyalty-bench"]),
    ],
    dependencies: dependencies,
    targets: [
        // MARK: - Core
        .target(name: "LoyaltyCore"),
        // The analysis' rules (figures, stages, the segment language): pure code over members' histories.
        .target(name: "LoyaltyAnalysis", dependencies: ["LoyaltyCore"]),

        // MARK: - Adapters
        .target(
            name: "LoyaltyAPI",
            dependencies: [
                "LoyaltyCore",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        .target(
            name: "LoyaltyServer",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyAnalysis",
                "LoyaltyAPI",
                "LoyaltySQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        .target(
            name: "LoyaltyStore",
            dependencies: [
                "LoyaltyCore",
                "LoyaltySQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // What the server's store and the device's share about running SQLite.
        .target(name: "LoyaltySQLite", dependencies: ["LoyaltyCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(
            name: "LoyaltySync",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyStore",
                "LoyaltyAPI",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIURLSession", package: "swift-openapi-urlsession"),
            ]
        ),

        // The member's client and the operator's commands: it links no part of the server (`loyalty demo` runs
        // the `loyalty-server` executable as a child process).
        .target(
            name: "LoyaltyCLI",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyAPI",
                "LoyaltyStore",
                "LoyaltySync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIURLSession", package: "swift-openapi-urlsession"),
            ]
        ),

        .target(
            name: "LoyaltySimulation",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyServer",
                "LoyaltyStore",
                "LoyaltySync",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: - Executables
        .executableTarget(name: "loyalty", dependencies: ["LoyaltyCLI"]),
        .executableTarget(
            name: "loyalty-server",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .executableTarget(
            name: "loyalty-sim",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyServer",
                "LoyaltySimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "loyalty-bench",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyStore",
                "LoyaltyTesting",
                "LoyaltyAPI",
                "LoyaltyServer",
                "LoyaltySync",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: - Tests
        .target(
            name: "LoyaltyTesting",
            dependencies: [
                "LoyaltyCore",
                "LoyaltyServer",
                "LoyaltyStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/LoyaltyTesting"
        ),
        .testTarget(name: "LoyaltyCoreTests", dependencies: ["LoyaltyCore"]),
        .testTarget(name: "LoyaltyAnalysisTests", dependencies: ["LoyaltyAnalysis", "LoyaltyCore"]),
        .testTarget(
            name: "LoyaltyAPITests",
            dependencies: ["LoyaltyAPI", "LoyaltyCore"]
        ),
        .testTarget(
            name: "LoyaltyStoreTests",
            dependencies: [
                "LoyaltyTesting",
                "LoyaltyCore",
                "LoyaltyStore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "LoyaltySyncTests",
            dependencies: [
                "LoyaltyTesting",
                "LoyaltyCore",
                "LoyaltyStore",
                "LoyaltySync",
                "LoyaltyServer",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LoyaltyCLITests",
            dependencies: [
                "LoyaltyTesting",
                "LoyaltyCLI",
                "LoyaltyCore",
                "LoyaltyServer",
                "LoyaltyStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LoyaltySimulationTests",
            dependencies: ["LoyaltySimulation", "LoyaltyServer", "LoyaltyTesting"]
        ),
        .testTarget(
            name: "LoyaltyServerTests",
            dependencies: [
                "LoyaltyTesting",
                "LoyaltyCore",
                "LoyaltyAPI",
                "LoyaltyServer",
                "LoyaltySQLite",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIURLSession", package: "swift-openapi-urlsession"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
