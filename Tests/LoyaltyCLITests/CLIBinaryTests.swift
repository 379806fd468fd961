import Foundation
import Testing

/// The member's client carries no part of the server: the `loyalty` binary's symbols name none of the server's
/// modules, while they do name the client's own (so the check would see them if they were there).
@Suite struct CLIBinaryTests {
    /// Swift symbol names start `$s` and spell each module as its length and its name.
    static func mangled(_ module: String) -> Data { Data("$s\(module.utf8.count)\(module)".utf8) }

    @Test func theClientBinaryLinksNoPartOfTheServer() throws {
        let binary = try #require(CLI.locate(), "the loyalty binary is built")
        let bytes = try Data(contentsOf: binary, options: .alwaysMapped)
        for module in ["LoyaltySync", "LoyaltyStore", "LoyaltyCLI"] {
            #expect(bytes.range(of: Self.mangled(module)) != nil, "the client's own \(module) is in the binary")
        }
        for module in ["LoyaltyServer", "Hummingbird", "HummingbirdCore", "Prometheus", "_CryptoExtras", "NIOSSL"] {
            #expect(bytes.range(of: Self.mangled(module)) == nil, "\(module) is linked into loyalty")
        }
    }
}
