import Foundation
import LoyaltyCore
import Testing

@Suite struct WireTests {
    func roundTrip<T: Codable & Equatable>(_ value: T) throws -> T {
        try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(value))
    }

    static let everyMutation: [Mutation] = [
        .activateOffer("welcome-10"), .redeemOffer("welcome-10"), .redeemReward("voucher-5"),
        .claimReceipt(code: "R-1001"), .answerSurvey("store-visit", answers: ["rating": "5"]),
        .setProfileField(.phone, value: "+49 30 1234567", basedOn: HLCTimestamp(wallMilliseconds: 5, counter: 1)),
        .setProfileField(.address, value: nil, basedOn: nil), .setConsent(.marketingSMS, granted: false),
    ]

    @Test(arguments: everyMutation)
    func everyMutationRoundTripsThroughJSON(mutation: Mutation) throws {
        let envelope = MutationEnvelope(
            deviceID: "phone", sequence: 7, stamp: HLCTimestamp(wallMilliseconds: 1_700_000_000_000, counter: 2),
            deviceTime: .test(), mutation: mutation)
        #expect(try roundTrip(envelope) == envelope)
        #expect(Mutation.kinds.contains(mutation.kind))
    }

    @Test func mutationsAreWrittenWithAKindField() throws {
        let json = String(decoding: try JSONEncoder().encode(Mutation.redeemReward("voucher-5")), as: UTF8.self)
        #expect(json.contains(#""kind":"redeemReward""#))
        #expect(json.contains(#""rewardID":"voucher-5""#))
    }

    @Test(arguments: [
        (#"{"kind":"stealPoints","points":1000}"#, "unknown mutation kind 'stealPoints'"),
        (#"{"kind":"redeemReward","rewardID":"a","points":5}"#, "field 'points' does not belong to redeemReward"),
        (#"{"kind":"redeemReward"}"#, "rewardID"),
        (#"{"kind":"setConsent","consent":"marketing-fax","granted":true}"#, "marketing-fax"),
        (#"{"kind":"setConsent","consent":"profiling","granted":"yes"}"#, "granted"),
    ])
    func badMutationJSONIsAnErrorThatNamesTheProblem(json: String, expected: String) {
        do {
            _ = try JSONDecoder().decode(Mutation.self, from: Data(json.utf8))
            Issue.record("decoded \(json)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test func changesAndResponsesRoundTrip() throws {
        let world = try World()
        var state = try world.member(withPoints: 700)
        var device = DeviceScript("phone")
        let outcome = state.applyOnServer(
            device.envelope(.redeemReward("voucher-5")), facts: ServerFacts(voucherCode: "V1"))
        let changes =
            outcome.changes.enumerated().map { Change(version: UInt64($0.offset + 1), operation: .upsert($0.element)) }
            + [Change(version: 99, operation: .delete(EntityKey(.reward, "old")))]
        let pull = PullResponse(
            changes: changes, cursor: Cursor(version: 99), hasMore: false, reset: false, lastProcessedSequence: 1,
            serverTime: .test(), serverStamp: HLCTimestamp(wallMilliseconds: 1, counter: 0))
        #expect(try roundTrip(pull) == pull)
        let push = PushResponse(
            results: [
                MutationResult(sequence: 1, status: .applied),
                MutationResult(sequence: 2, status: .adjusted(message: "kept the later value")),
                MutationResult(sequence: 3, status: .rejected(MutationRejection(.insufficientPoints, "no"))),
            ], lastProcessedSequence: 3, serverTime: .test(), serverStamp: HLCTimestamp(wallMilliseconds: 1, counter: 0)
        )
        #expect(try roundTrip(push) == push)
        #expect(try roundTrip(state) == state, "the whole member state round-trips (stores keep it as JSON)")
    }

    @Test(arguments: [
        ("15d", TimeSpan.days(15)), ("36h", .hours(36)), ("90m", .minutes(90)), ("30s", .seconds(30)),
        ("+1d", .days(1)), ("-2h", .hours(-2)), ("250ms", .milliseconds(250)),
    ])
    func durationsParseInTheSpellingScriptsUse(text: String, span: TimeSpan) throws {
        #expect(TimeSpan(parsing: text) == span)
        #expect(TimeSpan(parsing: span.description) == span)
    }

    @Test(arguments: ["", "d", "15", "1.5d", "15 days", "--1d", "9999999999d"])
    func badDurationsAreRefused(text: String) {
        #expect(TimeSpan(parsing: text) == nil)
    }

    @Test(
        arguments: [("12.34", 1234), ("12.3", 1230), ("12", 1200), ("0.05", 5), ("1000000", 100_000_000)]
            as [(String, Int64)])
    func amountsParseWithAtMostTwoDecimals(text: String, cents: Int64) throws {
        let money = try Money(parsing: text)
        #expect(money.minorUnits == cents)
        #expect(try Money(parsing: money.description) == money)
    }

    @Test(arguments: ["-5", "12.345", "1,50", "abc", "", ".5", "5.", "1000000.01", "1e3"])
    func badAmountsAreRefusedWithAClearMessage(text: String) {
        #expect(throws: LoyaltyError.self) { try Money(parsing: text) }
    }

    @Test func negativeOrAbsurdAmountsAreRefusedOnDecode() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Money.self, from: Data("-100".utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Money.self, from: Data("100000000000".utf8)) }
    }

    @Test func cardNumbersCarryALuhnCheckDigit() throws {
        let card = try CardNumber(body: "400000100001")
        #expect(card.digits.count == 13)
        #expect(try CardNumber(card.digits) == card)
        #expect(try CardNumber(card.description) == card, "the printed form with spaces is accepted")
        var mistyped = Array(card.digits)
        mistyped[3] = mistyped[3] == "9" ? "8" : "9"
        #expect(throws: LoyaltyError.self) { try CardNumber(String(mistyped)) }
        var swapped = Array(card.digits)
        swapped.swapAt(4, 5)
        if swapped != Array(card.digits) { #expect(throws: LoyaltyError.self) { try CardNumber(String(swapped)) } }
        #expect(try CardNumber("79927398713").digits == "79927398713", "the textbook Luhn example")
        #expect(Card(number: card, issuedAt: .test()).barcodePayload == "LOYALTY:\(card.digits)")
    }

    @Test func calendarDatesAreStrict() {
        #expect(CalendarDate("2024-02-29") != nil)
        #expect(CalendarDate("2023-02-29") == nil)
        #expect(CalendarDate("2024-2-29") == nil)
        #expect(CalendarDate("2024-13-01") == nil)
    }
}
