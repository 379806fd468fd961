public import Foundation
internal import LoyaltyCore
public import OpenAPIRuntime

/// The runtime's date transcoder on LoyaltyCore's ``RFC3339`` codec: `2026-06-01T10:00:00.000Z` written (UTC,
/// milliseconds), any RFC 3339 date-time read.
public struct RFC3339DateTranscoder: DateTranscoder {
    /// Creates the transcoder.
    public init() {}

    /// The date rounded to the millisecond, in UTC.
    public func encode(_ date: Date) throws -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        guard let text = RFC3339.format(milliseconds: milliseconds) else {
            throw LoyaltyError(.malformed, "the date \(date) is outside the years 1 to 9999")
        }
        return text
    }

    /// The date `text` names, to the nanosecond it gives.
    public func decode(_ text: String) throws -> Date {
        guard let instant = RFC3339.parse(text) else {
            throw LoyaltyError(
                .malformed, "'\(text.prefix(40))' is not an RFC 3339 date such as 2026-06-01T10:00:00.000Z")
        }
        return Date(timeIntervalSince1970: Double(instant.seconds) + Double(instant.nanoseconds) / 1e9)
    }
}

extension Components.Schemas.MemberExport {
    /// The export as the document a member keeps: JSON with sorted keys, indented, times in RFC 3339.
    public func document() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339DateTranscoder().encode(date))
        }
        return try encoder.encode(self)
    }
}
