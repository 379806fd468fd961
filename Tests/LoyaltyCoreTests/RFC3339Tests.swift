import LoyaltyCore
import Testing

/// The one RFC 3339 codec: exact fractions, leap days, offsets, and ``Timestamp`` reading and writing through it.
@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("2026-03-01T09:30:00.570Z", Int64(1_772_357_400_570)),
        ("2026-03-01T09:30:00.999Z", 1_772_357_400_999),
        ("2026-03-01T09:30:00.001Z", 1_772_357_400_001),
        ("2026-03-01T09:30:00Z", 1_772_357_400_000),
        ("2028-02-29T23:59:59.999Z", 1_835_481_599_999),  // a leap day
        ("2026-03-01T06:00:00.570-03:30", 1_772_357_400_570),  // a negative offset: 09:30 UTC
        ("2026-03-01T10:30:00.570+01:00", 1_772_357_400_570),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2026-03-01t09:30:00.570z", 1_772_357_400_570),
    ])
    func aTimeIsReadToTheExactMillisecond(text: String, milliseconds: Int64) throws {
        #expect(Timestamp.parse(text)?.millisecondsSince1970 == milliseconds)
        #expect(RFC3339.parse(text)?.milliseconds == milliseconds)
    }

    @Test func writingAndReadingBackGivesTheSameMillisecond() throws {
        var random = SeededRandom(seed: 3339)
        let edges: [Int64] = [0, -1, 1, 951_782_400_000, 951_868_799_999, 1_772_357_400_570, 253_402_300_799_999]
        for milliseconds in edges + (0..<2_000).map({ _ in random.int64(-62_135_596_800_000...253_402_300_799_999) }) {
            let written = try #require(RFC3339.format(milliseconds: milliseconds))
            #expect(RFC3339.parse(written)?.milliseconds == milliseconds, "\(written)")
            #expect(Timestamp(millisecondsSince1970: milliseconds).description == written)
        }
        #expect(RFC3339.format(milliseconds: 1_772_357_400_570) == "2026-03-01T09:30:00.570Z")
        #expect(RFC3339.format(milliseconds: 1_835_481_599_999) == "2028-02-29T23:59:59.999Z")
        #expect(RFC3339.format(milliseconds: 253_402_300_800_000) == nil, "the year 10000 is out of range")
    }

    @Test func finerFractionsAreKeptExactlyAndRoundedOnlyToMilliseconds() throws {
        let instant = try #require(RFC3339.parse("2026-03-01T09:30:00.123456789Z"))
        #expect(instant.nanoseconds == 123_456_789)
        #expect(instant.milliseconds == 1_772_357_400_123)
        #expect(RFC3339.parse("2026-03-01T09:30:00.9995Z")?.milliseconds == 1_772_357_401_000)
    }

    @Test(arguments: [
        "2026-02-29T00:00:00Z",  // not a leap year
        "2026-13-01T00:00:00Z", "2026-03-01 09:30:00Z", "2026-03-01T24:00:00Z", "2026-03-01T09:30:00",
        "2026-03-01T09:30:00.Z", "2026-03-01T09:30:00.1234567890Z", "2026-03-01T09:30:00+0100", "", "yesterday",
    ])
    func anythingElseIsNotATime(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func aCalendarDateIsMidnightUTC() {
        #expect(Timestamp.parse("2026-03-01") == Timestamp.parse("2026-03-01T00:00:00Z"))
    }
}
