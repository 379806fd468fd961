import Foundation
import LoyaltyAPI
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The hand-written pull answer against the generated types of docs/openapi.yaml, which stay the reference: what
/// `PullJSON` writes must read back through them as the same page, and what they write must read through `PullJSON`.
@Suite struct PullJSONTests {
    /// A real page: the catalogue, a member with points, a redemption (voucher, movements) and a deletion.
    func storedPage() async throws -> StoredPullResponse {
        let harness = try await Harness.make()
        let (session, device) = try await harness.enroll()
        try await harness.give(1000, to: session.memberID)
        _ = try await harness.service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    harness.envelope(device, 1, .redeemReward("voucher-5")),
                    // A quote, a backslash and unbalanced brackets inside a string: the entity scanner must not stop at them.
                    harness.envelope(
                        device, 2, .setProfileField(.address, value: #"Hof 3" Süd \ {x [y, Berlin"#, basedOn: nil)),
                ]),
            from: device)
        var page = try await harness.service.pullStored(
            PullRequest(deviceID: device.id, cursor: .start, limit: 1000), from: device)
        page.changes.append(StoredChange(version: 1_000_000, key: EntityKey(.reward, "withdrawn"), body: nil))
        return page
    }

    static var wireDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try RFC3339DateTranscoder().decode(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }

    static var wireEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339DateTranscoder().encode(date))
        }
        return encoder
    }

    @Test func theAnswerReadsBackThroughTheGeneratedTypesAsTheSamePage() async throws {
        let stored = try await storedPage()
        let expected = try stored.decoded()
        #expect(expected.changes.count > 10, "the page has the catalogue, the member's entities and a deletion")
        let kinds = Set(expected.changes.map(\.key.kind))
        #expect(
            kinds.isSuperset(of: [.program, .offer, .member, .lot, .ledgerEntry, .voucher, .reward, .profileField]))

        let written = try PullJSON.encode(stored)
        // Strict: the generated types refuse unknown fields and wrong types.
        let generated = try Self.wireDecoder.decode(Components.Schemas.PullResponse.self, from: written)
        #expect(try PullResponse(wire: generated) == expected)
        let read = try PullJSON.decode(written)
        #expect(read == expected)
        #expect(read.payloads == stored.changes.map(\.body), "each entity's bytes, as stored, for the device to keep")
    }

    @Test(arguments: [false, true])
    func whatTheGeneratedTypesWriteReadsThroughPullJSON(pretty: Bool) async throws {
        let expected = try await storedPage().decoded()
        let encoder = Self.wireEncoder
        if pretty { encoder.outputFormatting = [.prettyPrinted, .sortedKeys] }
        let read = try PullJSON.decode(try encoder.encode(try expected.wire()))
        #expect(read == expected)
        // The entities' bytes are found whatever the layout, and each is the entity's JSON.
        #expect(read.payloads.count == expected.changes.count)
        for (change, payload) in zip(read.changes, read.payloads) {
            guard case .upsert(let entity) = change.operation else {
                #expect(payload == nil)
                continue
            }
            #expect(try Entity.decode(kind: change.key.kind, json: try #require(payload)) == entity)
        }
    }

    @Test func idsAreEscapedAsJSONStrings() throws {
        let ids = ["quote\"d", #"back\slash"#, "new\nline\ttab\r", "control\u{01}\u{1F}", "München ✓ 🎟️", ""]
        let answer = StoredPullResponse(
            changes: ids.enumerated().map {
                StoredChange(version: UInt64($0.offset + 1), key: EntityKey(.voucher, $0.element), body: nil)
            },
            cursor: Cursor(version: 6), hasMore: true, reset: false, lastProcessedSequence: 0,
            serverTime: Timestamp(millisecondsSince1970: 1_800_000_000_123), serverStamp: HLCTimestamp(encoded: 42))
        let written = try PullJSON.encode(answer)
        let object = try #require(try JSONSerialization.jsonObject(with: written) as? [String: Any])
        let changes = try #require(object["changes"] as? [[String: Any]])
        #expect(changes.compactMap { $0["id"] as? String } == ids)
        #expect(object["serverTime"] as? String == "2027-01-15T08:00:00.123Z")
        #expect(try PullJSON.decode(written) == (try answer.decoded()))
    }

    @Test func aStoredStateThatIsNotAnObjectIsRefusedNotSent() {
        let answer = StoredPullResponse(
            changes: [StoredChange(version: 1, key: EntityKey(.voucher, "v"), body: Data("[1]".utf8))],
            cursor: Cursor(version: 1), hasMore: false, reset: false, lastProcessedSequence: 0,
            serverTime: Timestamp(millisecondsSince1970: 0), serverStamp: HLCTimestamp(encoded: 1))
        #expect(throws: WireError.self) { try PullJSON.encode(answer) }
    }

    @Test(arguments: [
        (#"{"version":1,"kind":"spaceship","id":"x","deleted":true}"#, "unknown kind 'spaceship'"),
        (#"{"version":2,"kind":"voucher","id":"x","deleted":false}"#, "change 2 has no entity"),
    ])
    func aMalformedChangeFailsThePageNamingIt(change: String, message: String) {
        let answer =
            #"{"changes":[\#(change)],"cursor":2,"hasMore":false,"reset":false,"#
            + #""lastProcessedSequence":0,"serverTime":"2026-01-01T00:00:00.000Z","serverStamp":"1"}"#
        #expect {
            try PullJSON.decode(Data(answer.utf8))
        } throws: { error in
            (error as? WireError)?.message.contains(message) == true
        }
    }
}
