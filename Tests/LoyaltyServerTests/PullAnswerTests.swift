import Foundation
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyAPI
@testable import LoyaltyServer

/// The server's real pull answer through the hand-written `PullJSON` and the generated types of docs/openapi.yaml,
/// which stay the reference: what the server writes must read back through both as the same page.
@Suite struct PullAnswerTests {
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

    @Test func theAnswerReadsBackThroughTheGeneratedTypesAsTheSamePage() async throws {
        let stored = try await storedPage()
        let expected = try stored.decoded()
        #expect(expected.changes.count > 10, "the page has the catalogue, the member's entities and a deletion")
        let kinds = Set(expected.changes.map(\.key.kind))
        #expect(
            kinds.isSuperset(of: [.program, .offer, .member, .lot, .ledgerEntry, .voucher, .reward, .profileField]))

        let written = try PullJSON.encode(stored)
        // Strict: the generated types refuse unknown fields and wrong types.
        let generated = try PushJSON.wireDecoder.decode(Components.Schemas.PullResponse.self, from: written)
        #expect(try PullResponse(wire: generated) == expected)
        let read = try PullJSON.decode(written)
        #expect(read == expected)
        #expect(read.payloads == stored.changes.map(\.body), "each entity's bytes, as stored, for the device to keep")
    }

    @Test(arguments: [false, true])
    func whatTheGeneratedTypesWriteReadsThroughPullJSON(pretty: Bool) async throws {
        let expected = try await storedPage().decoded()
        let encoder = PushJSON.wireEncoder
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

    @Test(arguments: [false, true])
    func theCursorIsFoundAtTheAnswersEndBeforeItIsRead(hasMore: Bool) async throws {
        var stored = try await storedPage()
        stored.cursor = Cursor(version: 987_654_321)
        stored.hasMore = hasMore
        let written = try PullJSON.encode(stored)
        let peeked = try #require(PullJSON.peekCursor(written))
        #expect(peeked.cursor == Cursor(version: 987_654_321))
        #expect(peeked.hasMore == hasMore)
        let read = try PullJSON.decode(written)
        #expect(peeked.cursor == read.cursor && peeked.hasMore == read.hasMore)
    }

    @Test func aCursorInAnotherShapeIsNotGuessed() async throws {
        let written = String(decoding: try PullJSON.encode(try await storedPage()), as: UTF8.self)
        let cursor = try #require(written.range(of: #"],"cursor":"#))
        let unexpected = [
            // Pretty-printed, as another server might write it.
            written.replacingCharacters(in: cursor, with: "],\n  \"cursor\" : "),
            // Cut short, a cursor too long for a version, a cursor written as text.
            String(written[..<cursor.upperBound]),
            written.replacingCharacters(in: cursor, with: #"],"cursor":1234567890123456789"#),
            written.replacingOccurrences(of: #""hasMore":"#, with: #""hasMore":"maybe","x":"#),
            "{}", "",
        ]
        for answer in unexpected {
            #expect(PullJSON.peekCursor(Data(answer.utf8)) == nil, "\(answer.suffix(120))")
        }
    }

    @Test func theQuickReaderReadsWhatTheServerWritesAsFoundationsDecoderDoes() async throws {
        let stored = try await storedPage()
        let written = try PullJSON.encode(stored)
        let quick = try #require(PullJSON.decodeQuickly(written), "the server's own answer is read the quick way")
        let reference = try PullJSON.decodeThroughFoundation(written)
        #expect(quick == reference)
        #expect(quick.payloads == reference.payloads)
    }
}
