import Foundation
import LoyaltyCore
import Testing

@testable import LoyaltyAPI

/// The hand-written pull reader and writer against the generated types of docs/openapi.yaml, which stay the
/// reference: what `PullJSON` writes must read back through them, and what they write must read through `PullJSON`.
@Suite struct PullJSONTests {
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
        #expect(throws: LoyaltyError.self) { try PullJSON.encode(answer) }
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
            (error as? LoyaltyError)?.message.contains(message) == true
        }
    }

    /// Lots and ledger entries with every field varied (some absent, some null, extremes), read the quick way and
    /// through their `Codable` conformances.
    @Test(arguments: 1...4 as ClosedRange<UInt64>)
    func lotsAndEntriesReadTheSameEitherWay(seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        func time() -> Timestamp? {
            random.next() % 3 == 0 ? nil : Timestamp(millisecondsSince1970: Int64(random.next() % 4_000_000_000_000))
        }
        func points() -> Int { Int(random.next() % 2_000_001) - 1_000_000 }
        var bodies: [(EntityKey, Data)] = []
        for index in 0..<200 {
            var lot = EarnLot(
                id: LotID("lot-\(index)"), cause: EarnLot.Cause.allCases[Int(random.next() % 5)], amount: points(),
                earnedAt: time() ?? Timestamp(millisecondsSince1970: -1), pendingUntil: time(), expiresAt: time(),
                purchaseAmount: random.next() % 2 == 0 ? nil : Money(minorUnits: Int64(random.next() % 100_000_001)),
                reference: random.next() % 2 == 0 ? nil : "ref ✓ \(random.next())")
            lot.remaining = points()
            lot.state = [.pending, .active, .expired][Int(random.next() % 3)]
            lot.returnedAmount = Money(minorUnits: Int64(random.next() % 1_000))
            lot.revoked = points()
            lot.expiredAt = time()
            lot.expiredPoints = points()
            bodies.append((EntityKey(.lot, lot.id.rawValue), try Entity.lot(lot).payloadJSON()))
            let entry = LedgerEntry(
                id: EntryID("entry-\(index)"), kind: LedgerEntry.Kind.allCases[Int(random.next() % 7)],
                at: time() ?? Timestamp(millisecondsSince1970: 0), available: points(), pending: points(),
                owed: points(),
                draws: (0..<Int(random.next() % 4)).map { LotDraw(lot: LotID("lot-\($0)"), points: points()) },
                reference: random.next() % 2 == 0 ? nil : "T-\(random.next())")
            bodies.append((EntityKey(.ledgerEntry, entry.id.rawValue), try Entity.ledgerEntry(entry).payloadJSON()))
        }
        // The same fields as the server could also write them: nulls for absent values, keys in another order.
        let withNulls =
            #"{"reference":null,"pendingUntil":null,"expiresAt":null,"purchaseAmount":null,"#
            + #""expiredAt":null,"id":"nulls","cause":"survey","amount":1,"remaining":1,"earnedAt":5,"#
            + #""state":"active","returnedAmount":0,"revoked":0,"expiredPoints":0}"#
        bodies.append((EntityKey(.lot, "nulls"), Data(withNulls.utf8)))
        let page = StoredPullResponse(
            changes: bodies.enumerated().map {
                StoredChange(version: UInt64($0.offset + 1), key: $0.element.0, body: $0.element.1)
            },
            cursor: Cursor(version: UInt64(bodies.count)), hasMore: true, reset: false, lastProcessedSequence: 3,
            serverTime: Timestamp(millisecondsSince1970: 1_800_000_000_000), serverStamp: HLCTimestamp(encoded: 99))
        let written = try PullJSON.encode(page)
        let quick = try #require(PullJSON.decodeQuickly(written))
        let reference = try PullJSON.decodeThroughFoundation(written)
        #expect(quick.changes.count == 401)
        for (mine, theirs) in zip(quick.changes, reference.changes) { #expect(mine == theirs) }
        #expect(quick == reference)
        #expect(quick.payloads == reference.payloads)
    }

    /// What the quick reader does not expect it leaves to Foundation's decoder, which reads it or names the fault.
    @Test(arguments: [
        (#""reference":"T-1""#, #""reference":"T\"1""#),  // an escaped string
        (#""amount":7"#, #""amount":7.0"#),  // a fraction
        (#""amount":7"#, #""amount":7,"colour":"red""#),  // an unknown field
        (#""amount":7"#, #""amount":7,"amount":8"#),  // a repeated key
        (#""earnedAt":1000"#, #""earnedAt":"2026-03-01T09:30:00Z""#),  // a time written as text
        (#""amount":7"#, #""amount":07"#),  // a leading zero
        (#""amount":7"#, #""amount":1234567890123456789"#),  // more digits than it reads
        (#""amount":7"#, #""amount":-92233720368547758080"#),  // more digits than any integer holds
        (#""deleted":false"#, #""deleted":fals"#),  // not a literal
        (#""purchaseAmount":500"#, #""purchaseAmount":-5"#),  // money out of range
        (#""serverStamp":"1"}"#, #""serverStamp":"1"} x"#),  // trailing bytes
        (#""cursor":2"#, #""cursor":-2"#),  // a negative cursor
        (#""draws":[]"#, #""draws":[{"lot":"l","points":1,"extra":true}]"#),  // an unknown field in a draw
    ])
    func whatTheQuickReaderDoesNotExpectGoesToFoundationsDecoder(original: String, replacement: String) throws {
        let lot =
            #"{"id":"l","cause":"purchase","amount":7,"remaining":7,"earnedAt":1000,"state":"active","#
            + #""purchaseAmount":500,"returnedAmount":0,"revoked":0,"expiredPoints":0,"reference":"T-1"}"#
        let entry = #"{"id":"e","kind":"earn","at":1000,"available":7,"pending":0,"owed":0,"draws":[]}"#
        let answer =
            #"{"changes":[{"version":1,"kind":"lot","id":"l","deleted":false,"entity":\#(lot)},"#
            + #"{"version":2,"kind":"ledgerEntry","id":"e","deleted":false,"entity":\#(entry)}],"cursor":2,"#
            + #""hasMore":false,"reset":false,"lastProcessedSequence":0,"#
            + #""serverTime":"2026-01-01T00:00:00.000Z","serverStamp":"1"}"#
        #expect(PullJSON.decodeQuickly(Data(answer.utf8)) != nil, "the unchanged answer is read the quick way")
        let changed = try #require(
            answer.firstRange(of: original).map { answer.replacingCharacters(in: $0, with: replacement) })
        let data = Data(changed.utf8)
        #expect(PullJSON.decodeQuickly(data) == nil)
        let read = Result { try PullJSON.decode(data) }
        let reference = Result { try PullJSON.decodeThroughFoundation(data) }
        switch (read, reference) {
        case (.success(let mine), .success(let theirs)): #expect(mine == theirs)
        case (.failure(let mine), .failure(let theirs)): #expect("\(mine)" == "\(theirs)")
        default: Issue.record("one read \(read), the other \(reference)")
        }
    }

    /// Pull requests read by hand and through the generated types: the same request, or the hand reader gives up;
    /// what the generated types refuse is refused.
    @Test func aPullRequestIsReadAsTheGeneratedTypesReadIt() throws {
        func generated(_ data: Data) throws -> PullRequest {
            try PullRequest(
                wire: JSONDecoder().decode(Components.Schemas.PullRequest.self, from: data), defaultLimit: 2_000)
        }
        var random = SeededRandom(seed: 7)
        for _ in 0..<40 {
            let request = PullRequest(
                deviceID: DeviceID("d-\(random.next() % 100_000)"), cursor: Cursor(version: random.next() % 1_000_000),
                limit: Int(1 + random.next() % 5_000),
                allowance: random.next() % 2 == 0
                    ? nil
                    : AllowanceRequest(
                        release: random.next() % 2 == 0 ? nil : Int(1 + random.next() % 9), through: random.next() % 50)
            )
            let data = try JSONEncoder().encode(request.wire)
            #expect(PullJSON.decodeRequestQuickly(data, defaultLimit: 2_000) == request)
            #expect(try generated(data) == request)
        }
        let forms: [(String, refused: Bool)] = [
            (#"{"deviceID":"d-1","cursor":5}"#, false),
            (#" { "cursor" : 5 , "deviceID" : "d-1" , "limit" : 10 } "#, false),
            (#"{"deviceID":"d-1","cursor":5,"limit":null}"#, false),
            (#"{"deviceID":"d-\u0031","cursor":5}"#, false),
            (#"{"deviceID":"d-1","cursor":5,"allowance":{"through":3}}"#, false),
            (#"{"deviceID":"d-1","cursor":5,"allowance":{"release":2,"through":3}}"#, false),
            (#"{"deviceID":"d-1","cursor":5,"allowance":{"release":0,"through":3}}"#, true),
            (#"{"deviceID":"d-1","cursor":5,"allowance":{"release":2}}"#, true),
            (#"{"deviceID":"d-1","cursor":5,"allowance":{"through":-1}}"#, true),
            (#"{"deviceID":"d-1","cursor":5,"allowance":{"through":1,"extra":1}}"#, true),
            (#"{"deviceID":"d-1","cursor":-5}"#, true),
            (#"{"deviceID":"d-1","cursor":5.5}"#, true),
            (#"{"deviceID":"d-1","cursor":"5"}"#, true),
            (#"{"deviceID":"d-1"}"#, true),
            (#"{"cursor":5}"#, true),
            (#"{"deviceID":"d-1","cursor":5,"extra":true}"#, true),
            (#"{"deviceID":"d-1","cursor":5}x"#, true),
            (#"[]"#, true),
        ]
        for (form, refused) in forms {
            let data = Data(form.utf8)
            let quick = PullJSON.decodeRequestQuickly(data, defaultLimit: 2_000)
            switch Result(catching: { try generated(data) }) {
            case .failure:
                #expect(refused, "the generated types refused what the test says they read: \(form)")
                #expect(quick == nil, "the quick reader accepted what the generated types refuse: \(form)")
                #expect(throws: (any Error).self) { try PullJSON.decodeRequest(data, defaultLimit: 2_000) }
            case .success(let expected):
                #expect(!refused, "the generated types read what the test says they refuse: \(form)")
                if let quick { #expect(quick == expected, "\(form)") }
                #expect(try PullJSON.decodeRequest(data, defaultLimit: 2_000) == expected, "\(form)")
            }
        }
    }
}
