import Foundation
import LoyaltyCore
import Testing

@testable import LoyaltyServer

@Suite struct TokenTests {
    @Test func base64URLRoundTripsEveryLengthAndRefusesOtherAlphabets() {
        var random = SeededRandom(seed: 66)
        for length in 0...66 {
            let bytes = Data((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            let text = bytes.base64URL
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Data(base64URL: text) == bytes, "length \(length)")
        }
        #expect(Data(base64URL: "ab+c") == nil, "standard base64's alphabet is not base64url's")
        #expect(Data(base64URL: "a") == nil, "one character is no byte")
        #expect(Data(base64URL: "a b") == nil)
    }

    @Test func aTamperedOrExpiredAccessTokenIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let authority = TokenAuthority(key: try TokenAuthority.loadKey(in: directory))
        let now = Timestamp(millisecondsSince1970: 1_800_000_000_000)
        let token = authority.accessToken(for: .init(memberID: "m-1", deviceID: "d-1"), now: now).token
        #expect(try authority.verify(accessToken: token, now: now).deviceID == "d-1")
        var tampered = Array(token)
        tampered[3] = tampered[3] == "A" ? "B" : "A"
        #expect(throws: APIFailure.self) { try authority.verify(accessToken: String(tampered), now: now) }
        #expect(throws: APIFailure.self) { try authority.verify(accessToken: token, now: now.adding(.days(1))) }
    }
}
