import Foundation
import LoyaltyCore
import Testing

@testable import LoyaltyAPI

/// The hand-written push reader and answer writer against the generated types of docs/openapi.yaml, which stay the
/// reference: what they write must read through `PushJSON` as the same push, what `PushJSON` writes must read back
/// through them as the same answer, and anything the quick reader does not expect is left to them.
@Suite struct PushJSONTests {
    /// A push of every kind of mutation, with values a plain reader could trip on.
    static func randomPush(seed: UInt64, count: Int) -> PushRequest {
        var random = SeededRandom(seed: seed)
        func text() -> String {
            ["v-\(random.next() % 1000)", "Hof 3, Süd ✓", "", "a b [c] {d}", "x:y,z"][Int(random.next() % 5)]
        }
        func stamp() -> HLCTimestamp {
            HLCTimestamp(
                wallMilliseconds: Int64(random.next() % 4_000_000_000_000), counter: UInt16(random.next() % 60_000))
        }
        let device = DeviceID("d-\(random.next() % 100_000)")
        let mutations = (0..<count).map { index -> MutationEnvelope in
            let mutation: LoyaltyCore.Mutation
            switch random.next() % 8 {
            case 0: mutation = .activateOffer(OfferID(text()))
            case 1: mutation = .redeemOffer(OfferID(text()))
            case 2: mutation = .redeemReward(RewardID(text()))
            case 3: mutation = .claimReceipt(code: text())
            case 4:
                mutation = .answerSurvey(
                    SurveyID(text()),
                    answers: Dictionary(
                        uniqueKeysWithValues: (0..<Int(random.next() % 4)).map { ("q\($0) ✓", text()) }))
            case 5:
                mutation = .setProfileField(
                    ProfileField.allCases[Int(random.next() % 5)], value: random.next() % 3 == 0 ? nil : text(),
                    basedOn: random.next() % 2 == 0 ? nil : stamp())
            case 6:
                mutation = .setConsent(ConsentKind.allCases[Int(random.next() % 4)], granted: random.next() % 2 == 0)
            default:
                mutation = .requestErasure
            }
            return MutationEnvelope(
                deviceID: device, sequence: UInt64(index + 1) * (1 + random.next() % 1_000_000_000), stamp: stamp(),
                deviceTime: Timestamp(millisecondsSince1970: Int64(random.next() % 4_000_000_000_000)),
                mutation: mutation)
        }
        return PushRequest(deviceID: device, mutations: mutations)
    }

    static func generated(_ data: Data) throws -> PushRequest {
        try PushRequest(wire: PushJSON.wireDecoder.decode(Components.Schemas.PushRequest.self, from: data))
    }

    @Test func pushesWrittenByTheGeneratedTypesReadQuicklyAsTheSamePush() throws {
        for seed in 1...40 {
            let push = Self.randomPush(seed: UInt64(seed), count: 1 + seed % 12)
            let data = try PushJSON.wireEncoder.encode(push.wire)
            let quick = try #require(
                PushJSON.decodeQuickly(data), "seed \(seed): \(String(decoding: data, as: UTF8.self))")
            #expect(quick == push, "seed \(seed)")
            #expect(try Self.generated(data) == push, "seed \(seed)")
        }
        // Every kind was among them.
        let kinds = Set(
            (1...40).flatMap { Self.randomPush(seed: UInt64($0), count: 1 + $0 % 12).mutations.map(\.mutation.kind) })
        #expect(kinds == Set(LoyaltyCore.Mutation.kinds))
    }

    /// Forms the quick reader does not expect: it gives up (nil) or reads exactly what the generated types read. What
    /// they refuse, it never accepts.
    @Test func whatTheQuickReaderDoesNotExpectIsLeftToTheGeneratedTypes() throws {
        let envelope =
            #"{"sequence":1,"stamp":"123","deviceTime":"2026-06-01T10:00:00.000Z","mutation":MUTATION}"#
        func push(_ mutation: String, envelope: String = envelope, top: String = "") -> String {
            #"{"deviceID":"d-1","mutations":["# + envelope.replacingOccurrences(of: "MUTATION", with: mutation) + "]"
                + top + "}"
        }
        let consent = #"{"kind":"setConsent","consent":"profiling","granted":true}"#
        let forms: [(String, refused: Bool)] = [
            (push(consent), false),
            ("  \n" + push(consent).replacingOccurrences(of: ",", with: " ,\n ") + " ", false),
            (push(consent, top: #","extra":1"#), true),
            (push(consent, envelope: envelope.replacingOccurrences(of: "{", with: #"{"extra":true,"#)), true),
            (push(#"{"kind":"setConsent","consent":"profiling","granted":true,"offerID":"o"}"#), true),
            (push(#"{"kind":"setConsent","consent":"profiling"}"#), true),
            (push(#"{"kind":"setConsent","consent":"profiling","granted":"yes"}"#), true),
            (push(#"{"kind":"setConsent","consent":"sms","granted":true}"#), true),
            (push(#"{"kind":"teleport","to":"mars"}"#), true),
            (push(#"{"kind":"activateOffer","rewardID":"r"}"#), true),
            // A repeated key: Foundation keeps one of them; the quick reader leaves it to Foundation.
            (push(#"{"kind":"activateOffer","offerID":"o","offerID":"p"}"#), false),
            (push(#"{"kind":"activateOffer","offerID":"o\u00e9"}"#), false),
            (push(#"{"kind":"setProfileField","field":"name","value":null}"#), false),
            (push(#"{"kind":"setProfileField","field":"name","basedOn":"12x"}"#), true),
            (push(#"{"kind":"answerSurvey","surveyID":"s","answers":{"q":1}}"#), true),
            (push(#"{"kind":"answerSurvey","surveyID":"s"}"#), true),
            (
                push(consent, envelope: envelope.replacingOccurrences(of: #""sequence":1"#, with: #""sequence":0"#)),
                true
            ),
            (
                push(consent, envelope: envelope.replacingOccurrences(of: #""sequence":1"#, with: #""sequence":-3"#)),
                true
            ),
            (
                push(consent, envelope: envelope.replacingOccurrences(of: #""sequence":1"#, with: #""sequence":1.5"#)),
                true
            ),
            (
                push(
                    consent,
                    envelope: envelope.replacingOccurrences(
                        of: #""sequence":1"#, with: #""sequence":9223372036854775807"#)),
                false
            ),
            (push(consent, envelope: envelope.replacingOccurrences(of: #""123""#, with: #""-1""#)), true),
            (push(consent, envelope: envelope.replacingOccurrences(of: "10:00:00.000Z", with: "25:00:00Z")), true),
            (
                push(consent, envelope: envelope.replacingOccurrences(of: "10:00:00.000Z", with: "10:00:00+02:00")),
                false
            ),
            (push(consent) + "x", true),
            (#"{"mutations":[]}"#, true),
            (#"{"deviceID":"d-1"}"#, true),
            (#"{"deviceID":"d-1","mutations":[]}"#, false),
        ]
        for (form, refused) in forms {
            let data = Data(form.utf8)
            let reference = Result { try Self.generated(data) }
            let quick = PushJSON.decodeQuickly(data)
            switch reference {
            case .failure:
                #expect(refused, "the generated types refused what the test says they read: \(form)")
                #expect(quick == nil, "the quick reader accepted what the generated types refuse: \(form)")
                #expect(throws: (any Error).self) { try PushJSON.decode(data) }
            case .success(let expected):
                #expect(!refused, "the generated types read what the test says they refuse: \(form)")
                if let quick { #expect(quick == expected, "\(form)") }
                #expect(try PushJSON.decode(data) == expected, "\(form)")
            }
        }
    }

    @Test func theAnswerReadsBackThroughTheGeneratedTypesAsTheSameAnswer() throws {
        var random = SeededRandom(seed: 7)
        for round in 0..<30 {
            let results = (0..<Int(random.next() % 12)).map { index -> MutationResult in
                let message = ["", #"a "quoted" \ note"#, "Punkte ✓\n", "plain"][Int(random.next() % 4)]
                let status: MutationStatus
                switch random.next() % 3 {
                case 0: status = .applied
                case 1: status = .adjusted(message: message)
                default: status = .rejected(MutationRejection(.insufficientPoints, message))
                }
                return MutationResult(sequence: UInt64(index + 1), status: status)
            }
            let response = PushResponse(
                results: results, lastProcessedSequence: UInt64(random.next() % 1_000_000),
                serverTime: Timestamp(millisecondsSince1970: Int64(random.next() % 4_000_000_000_000)),
                serverStamp: HLCTimestamp(wallMilliseconds: Int64(random.next() % 4_000_000_000_000), counter: 3))
            let written = try PushJSON.encode(response)
            let read = try PushResponse(
                wire: PushJSON.wireDecoder.decode(Components.Schemas.PushResponse.self, from: written))
            #expect(read == response, "round \(round): \(String(decoding: written, as: UTF8.self))")
        }
    }
}
