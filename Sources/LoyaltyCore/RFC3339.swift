/// RFC 3339 date-times, read and written by hand in one place: the wire (`RFC3339DateTranscoder`), ``Timestamp``
/// and the files an operator writes all go through it.
///
/// Written as `2026-06-01T10:00:00.000Z` (UTC, milliseconds); read with or without a fraction (up to nine digits,
/// kept exactly, not through a floating-point number), with `Z` or an offset such as `-03:30`. Years 1 to 9999.
/// By hand rather than with `ISO8601DateFormatter`, which is slow and whose dates lose a millisecond when turned
/// back into whole milliseconds.
public enum RFC3339 {
    /// An instant read from text: whole seconds since 1970-01-01T00:00:00Z and the nanoseconds after them.
    public struct Instant: Hashable, Sendable {
        /// Whole seconds since the Unix epoch (negative before it).
        public var seconds: Int64
        /// Nanoseconds after `seconds`, 0 to 999,999,999.
        public var nanoseconds: Int64

        /// The instant in whole milliseconds, rounded to the nearest (half a millisecond up).
        public var milliseconds: Int64 { seconds * 1000 + (nanoseconds + 500_000) / 1_000_000 }
    }

    /// `milliseconds` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`, or nil outside the years 1 to 9999.
    public static func format(milliseconds: Int64) -> String? {
        let (days, dayMilliseconds) = floorDivide(milliseconds, 86_400_000)
        let (year, month, day) = civil(days: days)
        guard (1...9999).contains(year) else { return nil }
        let seconds = dayMilliseconds / 1000
        func digits(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(digits(year, 4))-\(digits(month, 2))-\(digits(day, 2))T\(digits(seconds / 3600, 2)):"
            + "\(digits(seconds / 60 % 60, 2)):\(digits(seconds % 60, 2)).\(digits(dayMilliseconds % 1000, 3))Z"
    }

    /// The instant `text` names, or nil if it is not an RFC 3339 date-time.
    public static func parse(_ text: String) -> Instant? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ width: Int, _ range: ClosedRange<Int64>) -> Int64? {
            guard index + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<(index + width)] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += width
            return range.contains(value) ? value : nil
        }
        func expect(_ allowed: [UInt8]) -> Bool {
            guard index < bytes.count, allowed.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4, 1...9999), expect([45]),  // -
            let month = number(2, 1...12), expect([45]),
            let day = number(2, 1...daysIn(month: month, year: year)), expect([84, 116]),  // T or t
            let hour = number(2, 0...23), expect([58]),  // :
            let minute = number(2, 0...59), expect([58]),
            let second = number(2, 0...59)
        else { return nil }
        var nanoseconds: Int64 = 0
        if index < bytes.count, bytes[index] == 46 {  // .
            index += 1
            let start = index
            var scale: Int64 = 100_000_000
            while index < bytes.count, (48...57).contains(bytes[index]) {
                nanoseconds += Int64(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start, index - start <= 9 else { return nil }
        }
        var offsetSeconds: Int64 = 0
        guard index < bytes.count else { return nil }
        if bytes[index] == 90 || bytes[index] == 122 {  // Z or z
            index += 1
        } else {
            let sign: Int64 = bytes[index] == 43 ? 1 : bytes[index] == 45 ? -1 : 0
            guard sign != 0 else { return nil }
            index += 1
            guard let hours = number(2, 0...23), expect([58]), let minutes = number(2, 0...59) else { return nil }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        guard index == bytes.count else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
        return Instant(seconds: seconds - offsetSeconds, nanoseconds: nanoseconds)
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
