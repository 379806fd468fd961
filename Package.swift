// swift-tools-version:6.1

import PackageDescription

// MARK: - Dependencies
// LoyaltyCore depends on Foundation only. The adapters (store, sync engine, server, HTTP contract)
// add GRDB, Hummingbird, PostgresNIO, swift-openapi-* and ArgumentParser as their issues land.

let package = Package(
    name: "Loyalty",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LoyaltyCore", targets: ["LoyaltyCore"])
    ],
    targets: [
        // MARK: - Core
        .target(name: "LoyaltyCore"),

        // MARK: - Tests
        .testTarget(name: "LoyaltyCoreTests", dependencies: ["LoyaltyCore"]),
    ]
)

for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
