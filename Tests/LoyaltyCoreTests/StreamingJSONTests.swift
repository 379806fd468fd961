import Foundation
import LoyaltyCore
import Testing

/// The streaming encoder against Foundation's `JSONEncoder`: the same JSON once parsed, for everything this package
/// stores and sends, and `JSONEncoder` itself for what it does not stream.
@Suite struct StreamingJSONTests {
    /// Both encoders' output, parsed: equal objects, arrays, strings and numbers.
    func expectSameJSON<T: Codable & Equatable>(
        _ value: T, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let streamed = try StreamingJSON.encode(value)
        let foundation = try JSONEncoder().encode(value)
        let mine = try JSONSerialization.jsonObject(with: streamed, options: .fragmentsAllowed) as? NSObject
        let theirs = try JSONSerialization.jsonObject(with: foundation, options: .fragmentsAllowed) as? NSObject
        #expect(
            mine == theirs,
            "\(String(decoding: streamed, as: UTF8.self)) against \(String(decoding: foundation, as: UTF8.self))",
            sourceLocation: sourceLocation)
        #expect(try JSONDecoder().decode(T.self, from: streamed) == value, sourceLocation: sourceLocation)
    }

    @Test func everyEntityOfABusyMemberEncodesAsFoundationEncodesIt() throws {
        let world = try World()
        var state = try world.member(withPoints: 2_000, segments: ["gold"])
        var device = DeviceScript("d-1")
        let mutations: [Mutation] = [
            .activateOffer(world.catalogue.offers[0].id), .redeemReward(world.catalogue.rewards[0].id),
            .setProfileField(.name, value: #"Anna "Ann" Schmidt \ München / ✓"#, basedOn: nil),
            .setProfileField(.address, value: nil, basedOn: nil), .setConsent(.marketingEmail, granted: true),
            .answerSurvey(
                world.catalogue.surveys[0].id, answers: ["rating": "5", "comment": "line\nbreak\ttab\u{01}"]),
            .claimReceipt(code: "R-1001"),
        ]
        var results: [MutationResult] = []
        for mutation in mutations {
            let envelope = device.envelope(mutation)
            try expectSameJSON(envelope)
            let outcome = state.applyOnServer(envelope)
            results.append(MutationResult(sequence: envelope.sequence, status: outcome.status))
            for entity in outcome.changes { try expectSameJSON(entity) }
        }
        #expect(results.contains { if case .rejected = $0.status { true } else { false } }, "a rejection too")
        for result in results { try expectSameJSON(result) }
        _ = try state.recordReturn(
            "ret-1", of: "purchase:tx-start", amount: Money(minorUnits: 50_000), at: .test(.days(1)))
        _ = state.runJobs(at: .test(.days(900)))
        for entity in state.entities {
            try expectSameJSON(entity)
            #expect(try Entity.decode(kind: entity.key.kind, json: try entity.payloadJSON()) == entity)
        }
        try expectSameJSON(state)
        try expectSameJSON(world.program)
    }

    @Test func lotsAndEntriesWithEveryFieldVariedEncodeAsFoundationEncodesThem() throws {
        var random = SeededRandom(seed: 7)
        func time() -> Timestamp? {
            random.next() % 3 == 0 ? nil : Timestamp(millisecondsSince1970: Int64(random.next() % 4_000_000_000_000))
        }
        for index in 0..<300 {
            var lot = EarnLot(
                id: LotID("lot-\(index)"), cause: EarnLot.Cause.allCases[Int(random.next() % 5)],
                amount: Int(random.next() % 1_000_000), earnedAt: time() ?? .test(), pendingUntil: time(),
                expiresAt: time(), purchaseAmount: random.next() % 2 == 0 ? nil : Money(minorUnits: 12_345),
                reference: random.next() % 2 == 0 ? nil : "ref-\(random.next())")
            lot.expiredAt = time()
            lot.remaining = -Int(random.next() % 1_000)
            try expectSameJSON(lot)
            try expectSameJSON(
                LedgerEntry(
                    id: EntryID("e-\(index)"), kind: LedgerEntry.Kind.allCases[Int(random.next() % 7)],
                    at: time() ?? .test(), available: Int(random.next() % 100), pending: -3, owed: 0,
                    draws: (0..<Int(random.next() % 3)).map { LotDraw(lot: LotID("l-\($0)"), points: $0) },
                    reference: nil))
        }
    }

    struct Shapes: Codable, Equatable {
        var empty: [Int] = []
        var emptyMap: [String: Int] = [:]
        var nested: [[String]] = [[], ["a"], []]
        var map: [String: [Int]] = ["x": [], "y": [1, 2]]
        var byNumber: [Int: String] = [1: "one", 20: "twenty"]
        var absent: String? = nil
        var flags: [Bool] = [true, false]
        var numbers: [Double] = [0, -0.0, 1, 1.5, -2.25, 1e-7, 123_456_789_012, 0.1]
        var extremes: [Int64] = [.min, .max, 0, -1]
        var unsigned: UInt64 = .max
        var text = "quote\" back\\slash / new\nline\r\t \u{08}\u{0C}\u{01}\u{1F} ✓ 🎟️"
        /// Copied whole, not byte by byte: nothing in it needs an escape.
        var plain = "café ✓ 🎟️ with nothing to escape"
    }

    @Test func integersAreSpelledAsSwiftSpellsThem() {
        var random = SeededRandom(seed: 41)
        func spelled(_ value: some BinaryInteger) -> String {
            var bytes: [UInt8] = []
            StreamingJSON.appendInteger(value, to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
        for value: Int64 in [.min, .min + 1, -10, -9, -1, 0, 1, 9, 10, 99, 100, .max - 1, .max] {
            #expect(spelled(value) == String(value))
        }
        for value: UInt64 in [0, 9, 10, UInt64(Int64.max), UInt64(Int64.max) + 1, .max] {
            #expect(spelled(value) == String(value))
        }
        for _ in 0..<2_000 {
            let bits = random.next()
            let width = random.next() % 64
            let value = Int64(bitPattern: bits) >> width
            #expect(spelled(value) == String(value))
            #expect(spelled(bits >> width) == String(bits >> width))
            #expect(spelled(Int8(truncatingIfNeeded: bits)) == String(Int8(truncatingIfNeeded: bits)))
        }
    }

    @Test func emptyContainersNumbersAndStringsEncodeAsFoundationEncodesThem() throws {
        try expectSameJSON(Shapes())
        try expectSameJSON([Shapes(), Shapes()])
        try expectSameJSON(["only": Shapes()])
        try expectSameJSON("a bare string")
        try expectSameJSON(42)
        try expectSameJSON([String]())
    }

    // Each alone: one of them would make the whole value go to Foundation and hide the others.
    struct WithData: Codable, Equatable {
        var bytes = Data([0, 1, 2, 250])
        var maybe: Data? = Data([9])
        var list = [Data([7, 8])]
    }
    struct WithURL: Codable, Equatable { var link = URL(string: "https://example.com/a?b=c")! }
    struct WithDecimal: Codable, Equatable { var amount = Decimal(string: "12.34")! }
    struct WithFloat: Codable, Equatable { var share: Float = 0.1 }

    /// Writes to its object again after a nested array was begun, and again to that array.
    struct Interleaved: Encodable {
        enum Keys: String, CodingKey { case a, b }
        func encode(to encoder: any Encoder) throws {
            var object = encoder.container(keyedBy: Keys.self)
            var list = object.nestedUnkeyedContainer(forKey: .a)
            try list.encode(1)
            try object.encode(2, forKey: .b)
            try list.encode(3)
        }
    }

    struct TwiceTheSameKey: Encodable {
        enum Keys: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var object = encoder.container(keyedBy: Keys.self)
            try object.encode(1, forKey: .a)
            try object.encode(2, forKey: .a)
        }
    }

    struct Nothing: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    @Test func whatItDoesNotStreamIsEncodedByFoundation() throws {
        // Foundation's key order varies from one call to the next: objects are compared parsed, except where a
        // streamed answer would parse the same (a repeated key: the last one wins), which is compared as bytes.
        func parsed(_ data: Data) throws -> NSObject? { try JSONSerialization.jsonObject(with: data) as? NSObject }
        #expect(try parsed(StreamingJSON.encode(WithData())) == (try parsed(JSONEncoder().encode(WithData()))))
        #expect(try parsed(StreamingJSON.encode(WithURL())) == (try parsed(JSONEncoder().encode(WithURL()))))
        #expect(try parsed(StreamingJSON.encode(WithDecimal())) == (try parsed(JSONEncoder().encode(WithDecimal()))))
        #expect(try StreamingJSON.encode(WithFloat()) == (try JSONEncoder().encode(WithFloat())))
        #expect(try parsed(StreamingJSON.encode(Interleaved())) == (try parsed(JSONEncoder().encode(Interleaved()))))
        #expect(String(decoding: try StreamingJSON.encode(TwiceTheSameKey()), as: UTF8.self) == #"{"a":2}"#)
        #expect(throws: EncodingError.self) { try StreamingJSON.encode(Nothing()) }
        #expect(throws: EncodingError.self) { try StreamingJSON.encode([Double.nan]) }
    }
}
