internal import Foundation

/// A field of the member's profile that a member can change.
public enum ProfileField: String, Hashable, Sendable, Codable, CaseIterable {
    case name
    case email
    case phone
    case birthdate
    case address

    /// Checks a new value for the field; returns the value as stored (trimmed), or the reason it is refused.
    /// `nil` clears the field, which only the optional fields allow.
    public func validate(_ value: String?, today: CalendarDate? = nil) -> Result<String?, MutationRejection> {
        guard let raw = value else {
            if self == .name || self == .email {
                return .failure(MutationRejection(.invalidFieldValue, "\(rawValue) cannot be cleared"))
            }
            return .success(nil)
        }
        let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        func refuse(_ message: String) -> Result<String?, MutationRejection> {
            .failure(MutationRejection(.invalidFieldValue, "\(rawValue): \(message)"))
        }
        switch self {
        case .name:
            guard (1...100).contains(value.inputLength) else { return refuse("must be 1 to 100 characters") }
        case .email:
            let parts = value.split(separator: "@", omittingEmptySubsequences: false)
            guard value.inputLength <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
                !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !value.contains(" ")
            else { return refuse("\(value.quoted) is not an e-mail address") }
        case .phone:
            let digits = value.dropFirst(value.hasPrefix("+") ? 1 : 0).filter { $0 != " " && $0 != "-" }
            guard value.hasPrefix("+"), (7...15).contains(digits.count), digits.allSatisfy(\.isASCIIDigit) else {
                return refuse("\(value.quoted) is not a phone number in international form, e.g. +49 30 1234567")
            }
        case .birthdate:
            guard let date = CalendarDate(value) else {
                return refuse("\(value.quoted) is not a date of the form YYYY-MM-DD")
            }
            if let today, date > today { return refuse("\(value) is in the future") }
            if let today, date.year < today.year - 130 { return refuse("\(value) is too long ago") }
        case .address:
            guard (1...300).contains(value.inputLength) else { return refuse("must be 1 to 300 characters") }
        }
        return .success(value)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// The current value of one profile field and the stamp that decides concurrent edits (last writer wins).
public struct ProfileFieldValue: Hashable, Sendable, Codable {
    /// Which field.
    public var field: ProfileField
    /// Its value; nil if cleared.
    public var value: String?
    /// The stamp of the write that set it.
    public var stamp: HLCTimestamp
    /// Where the write came from.
    public var source: ChangeSource

    /// Creates a field value.
    public init(field: ProfileField, value: String?, stamp: HLCTimestamp, source: ChangeSource) {
        self.field = field
        self.value = value
        self.stamp = stamp
        self.source = source
    }

    /// Whether this write wins over `other`: the later stamp; on an exact tie, the source decides.
    public func wins(over other: ProfileFieldValue) -> Bool {
        if stamp != other.stamp { return stamp > other.stamp }
        return source.tieBreakKey > other.source.tieBreakKey
    }
}

/// A write that lost under last-writer-wins, kept so that nothing a member typed silently disappears.
public struct ConflictRecord: Hashable, Sendable, Codable, Identifiable {
    /// The record's id (derived from the losing write).
    public var id: String
    /// The field concerned.
    public var field: ProfileField
    /// The value that lost.
    public var losingValue: String?
    /// Where the losing write came from.
    public var losingSource: ChangeSource
    /// The value that was kept.
    public var winningValue: String?
    /// Where the kept write came from.
    public var winningSource: ChangeSource
    /// When the server decided it.
    public var decidedAt: Timestamp

    /// Creates a conflict record.
    public init(
        id: String, field: ProfileField, losingValue: String?, losingSource: ChangeSource, winningValue: String?,
        winningSource: ChangeSource, decidedAt: Timestamp
    ) {
        self.id = id
        self.field = field
        self.losingValue = losingValue
        self.losingSource = losingSource
        self.winningValue = winningValue
        self.winningSource = winningSource
        self.decidedAt = decidedAt
    }
}
