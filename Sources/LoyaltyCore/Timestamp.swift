public import Foundation

/// A point in time with millisecond precision, as milliseconds since 1970-01-01T00:00:00Z.
///
/// The core never reads the wall clock: every time comes in from the caller (a device clock corrected by its
/// measured offset, the server's clock, or a simulated clock).
public struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Milliseconds since the Unix epoch.
    public var millisecondsSince1970: Int64

    /// Creates a timestamp from milliseconds since the Unix epoch.
    public init(millisecondsSince1970: Int64) {
        self.millisecondsSince1970 = millisecondsSince1970
    }

    /// Creates a timestamp from a Foundation date, rounded to the nearest millisecond (a `Date` is a binary
    /// fraction: `.570` is stored as `.56999...`, which rounding down would make 569).
    public init(_ date: Date) {
        self.millisecondsSince1970 = Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// Decodes milliseconds since 1970, or (for hand-written files such as catalogues) an ISO 8601 date-time.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let milliseconds = try? container.decode(Int64.self) {
            self.millisecondsSince1970 = milliseconds
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = Timestamp.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(text.quoted) is not a time: use ISO 8601, e.g. 2026-03-01T09:30:00Z"
            )
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(millisecondsSince1970)
    }

    /// The same instant as a Foundation date.
    public var date: Date { Date(timeIntervalSince1970: Double(millisecondsSince1970) / 1000) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.millisecondsSince1970 < rhs.millisecondsSince1970 }

    /// This instant moved by a span of time (negative spans move it back).
    public func adding(_ span: TimeSpan) -> Timestamp {
        Timestamp(millisecondsSince1970: millisecondsSince1970 + span.milliseconds)
    }

    /// The span from `other` to this instant (negative when `other` is later).
    public func span(since other: Timestamp) -> TimeSpan {
        TimeSpan(milliseconds: millisecondsSince1970 - other.millisecondsSince1970)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-03-01T09:30:00.000Z` (milliseconds since 1970 outside the
    /// years 1 to 9999).
    public var description: String {
        RFC3339.format(milliseconds: millisecondsSince1970) ?? "\(millisecondsSince1970) ms since 1970"
    }

    /// Parses an RFC 3339 date-time (`2026-03-01T09:30:00Z`, with or without a fraction, `Z` or an offset; a
    /// fraction finer than a millisecond is rounded to the nearest) or a calendar date (`2026-03-01`, taken as
    /// midnight UTC). Returns nil for anything else.
    public static func parse(_ text: String) -> Timestamp? {
        if let instant = RFC3339.parse(text) { return Timestamp(millisecondsSince1970: instant.milliseconds) }
        if let day = CalendarDate(text) {
            return day.start(in: TimeZone(identifier: "UTC")!)
        }
        return nil
    }
}

/// A signed span of time in milliseconds.
public struct TimeSpan: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The span in milliseconds; negative spans point into the past.
    public var milliseconds: Int64

    /// Creates a span of the given number of milliseconds.
    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// A span of `value` milliseconds.
    public static func milliseconds(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value) }
    /// A span of `value` seconds.
    public static func seconds(_ value: Int64) -> TimeSpan { TimeSpan(milliseconds: value * 1000) }
    /// A span of `value` minutes.
    public static func minutes(_ value: Int64) -> TimeSpan { .seconds(value * 60) }
    /// A span of `value` hours.
    public static func hours(_ value: Int64) -> TimeSpan { .minutes(value * 60) }
    /// A span of `value` days of 24 hours (calendar days are the programme's time zone's business).
    public static func days(_ value: Int64) -> TimeSpan { .hours(value * 24) }
    /// No time at all.
    public static let zero = TimeSpan(milliseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public static prefix func - (span: Self) -> Self { TimeSpan(milliseconds: -span.milliseconds) }
    /// The two spans added.
    public static func + (lhs: Self, rhs: Self) -> Self { TimeSpan(milliseconds: lhs.milliseconds + rhs.milliseconds) }
    /// The second span taken from the first.
    public static func - (lhs: Self, rhs: Self) -> Self { TimeSpan(milliseconds: lhs.milliseconds - rhs.milliseconds) }

    /// The magnitude of the span.
    public var magnitude: TimeSpan { TimeSpan(milliseconds: abs(milliseconds)) }

    /// Decodes the written form (`72h`, `-2d`, `1500ms`).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let span = TimeSpan(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "\(text.quoted) is not a duration: write e.g. 15d, 36h, 90m, 30s or 500ms")
        }
        self = span
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Parses the spelling scripts use: a number and a unit `d`, `h`, `m`, `s` or `ms`, with an optional sign:
    /// `15d`, `36h`, `90m`, `30s`, `+1d`, `-2h`. Returns nil for anything else, including overflowing values.
    public init?(parsing text: String) {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        var sign: Int64 = 1
        if body.first == "+" || body.first == "-" {
            sign = body.first == "-" ? -1 : 1
            body = body.dropFirst()
        }
        let digits = body.prefix(while: \.isASCIIDigitCharacter)
        let unit = body.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 9, let value = Int64(digits) else { return nil }
        let unitMilliseconds: Int64
        switch unit {
        case "d": unitMilliseconds = 86_400_000
        case "h": unitMilliseconds = 3_600_000
        case "m": unitMilliseconds = 60_000
        case "s": unitMilliseconds = 1000
        case "ms": unitMilliseconds = 1
        default: return nil
        }
        self.milliseconds = sign * value * unitMilliseconds
    }

    /// The span in the largest whole unit that divides it, e.g. `14d`, `-2h`, `90m`.
    public var description: String {
        let units: [(Int64, String)] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")]
        for (size, name) in units where milliseconds != 0 && milliseconds % size == 0 {
            return "\(milliseconds / size)\(name)"
        }
        return "\(milliseconds)ms"
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}

/// A calendar day without a time, such as a birth date: `YYYY-MM-DD`.
public struct CalendarDate: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The year (1 to 9999).
    public var year: Int
    /// The month (1 to 12).
    public var month: Int
    /// The day of the month (1 to 31).
    public var day: Int

    /// Creates a date from its parts if they name a real day of the Gregorian calendar.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
            day <= CalendarDate.daysIn(month: month, year: year)
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD` strictly.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2])
        else { return nil }
        self.init(year: year, month: month, day: day)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = CalendarDate(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(text.quoted) is not a calendar date of the form YYYY-MM-DD")
        }
        self = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    public var description: String {
        let month = month < 10 ? "0\(month)" : "\(month)"
        let day = day < 10 ? "0\(day)" : "\(day)"
        return "\(year)-\(month)-\(day)"
    }

    /// The first instant of this day in a time zone.
    public func start(in timeZone: TimeZone) -> Timestamp {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let date = calendar.date(from: DateComponents(year: year, month: month, day: day))!
        return Timestamp(date)
    }

    /// The calendar day an instant falls on in a time zone.
    public static func of(_ instant: Timestamp, in timeZone: TimeZone) -> CalendarDate {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: instant.date)
        return CalendarDate(year: parts.year!, month: parts.month!, day: parts.day!)!
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension CalendarDate {
    /// The UTC calendar date of a moment (a year outside 1...9999 is clamped to its first or last day).
    public static func utc(_ time: Timestamp) -> CalendarDate {
        CalendarDate(dayNumber: RFC3339.floorDivide(time.millisecondsSince1970, 86_400_000).0)
    }

    /// Days since 1970-01-01 (negative before): consecutive days have consecutive numbers.
    public var dayNumber: Int64 { RFC3339.days(year: Int64(year), month: Int64(month), day: Int64(day)) }

    /// The date of a day number (clamped to the years 1...9999).
    public init(dayNumber: Int64) {
        let (year, month, day) = RFC3339.civil(days: dayNumber)
        self =
            CalendarDate(year: Int(year), month: Int(month), day: Int(day))
            ?? (year < 1 ? CalendarDate(year: 1, month: 1, day: 1)! : CalendarDate(year: 9999, month: 12, day: 31)!)
    }

    /// The date `days` later (earlier when negative).
    public func adding(days: Int64) -> CalendarDate { CalendarDate(dayNumber: dayNumber + days) }

    /// The Monday of this date's week (weeks run Monday to Sunday, as ISO 8601's).
    public var weekStart: CalendarDate {
        // 1970-01-01 was a Thursday: day number 0 is weekday 3 counted from Monday.
        let (_, weekday) = RFC3339.floorDivide(dayNumber + 3, 7)
        return adding(days: -weekday)
    }

    /// The first day of this date's month.
    public var monthStart: CalendarDate { CalendarDate(year: year, month: month, day: 1)! }

    /// Whole years from this date to `other` (an age on `other`).
    public func years(until other: CalendarDate) -> Int {
        other.year - year - ((other.month, other.day) < (month, day) ? 1 : 0)
    }
}
