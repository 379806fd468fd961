import Foundation
import LoyaltyAPI
import LoyaltyCore
import Testing

/// The hand-written RFC 3339 transcoder against Foundation's `ISO8601DateFormatter`, which it replaced.
@Suite struct DateTranscoderTests {
    let transcoder = RFC3339DateTranscoder()
    let reference: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    @Test func itWritesAndReadsWhatTheFormatterDoesFrom1700To2300() throws {
        var random = SeededRandom(seed: 1700)
        // 1 Jan 1700 to 1 Jan 2300, whole milliseconds, plus the edges of months, leap days and the epoch.
        var milliseconds: [Int64] = [0, -1, 1, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, -2_208_988_800_000]
        for _ in 0..<5_000 {
            milliseconds.append(random.int64(-8_520_336_000_000...10_413_792_000_000))
        }
        for value in milliseconds {
            let date = Date(timeIntervalSince1970: Double(value) / 1000)
            let written = try transcoder.encode(date)
            #expect(written == reference.string(from: date), "\(value)")
            let read = try transcoder.decode(written)
            #expect(Int64((read.timeIntervalSince1970 * 1000).rounded()) == value, "\(written)")
        }
    }

    @Test(arguments: [
        ("2026-06-01T10:00:00Z", "2026-06-01T10:00:00.000Z"),
        ("2026-06-01T12:30:00.5+02:30", "2026-06-01T10:00:00.500Z"),
        ("2026-06-01t10:00:00.123456z", "2026-06-01T10:00:00.123Z"),
        ("2024-02-29T23:59:59.999-01:00", "2024-03-01T00:59:59.999Z"),
    ])
    func itReadsFractionsAndOffsets(text: String, expected: String) throws {
        #expect(try transcoder.encode(transcoder.decode(text)) == expected)
    }

    @Test(arguments: [
        "", "2026-06-01", "2026-06-01T10:00", "2026-13-01T10:00:00Z", "2026-02-29T10:00:00Z", "2026-06-01T24:00:00Z",
        "2026-06-01T10:00:00", "2026-06-01T10:00:00.Z", "2026-06-01T10:00:00.1234567890Z", "2026-06-01 10:00:00Z",
        "2026-06-01T10:00:00Zjunk", "2026-06-01T10:00:00+2:00", "+2026-06-01T10:00:00Z", "２０２６-06-01T10:00:00Z",
    ])
    func itRefusesWhatIsNotAnRFC3339Date(text: String) {
        #expect(throws: LoyaltyError.self) { try transcoder.decode(text) }
    }
}
