import Foundation
import Testing

/// The contract is one file: the generator reads Sources/LoyaltyAPI/openapi.yaml, which is a link to
/// docs/openapi.yaml (what app teams and the contract check read). An editor that replaces the link with a copy
/// would let the two drift apart; this fails first.
@Suite struct ContractFileTests {
    @Test func theGeneratorsContractIsALinkToTheDocumentedOne() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let source = root.appendingPathComponent("Sources/LoyaltyAPI/openapi.yaml").path
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: source) == "../../docs/openapi.yaml")
    }
}
