/// What a member can consent to.
public enum ConsentKind: String, Hashable, Sendable, Codable, CaseIterable {
    case marketingEmail = "marketing-email"
    case marketingSMS = "marketing-sms"
    case marketingPush = "marketing-push"
    case profiling
}

/// Where a change came from: a member's device or the operator.
public enum ChangeSource: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A member's device.
    case device(DeviceID)
    /// The programme's operator (back office).
    case `operator`

    public var description: String {
        switch self {
        case .device(let id): "device \(id)"
        case .operator: "operator"
        }
    }

    /// Orders sources for breaking exact stamp ties deterministically.
    var tieBreakKey: String {
        switch self {
        case .device(let id): "device:\(id)"
        case .operator: "operator"
        }
    }
}

/// One change of one consent, kept forever as proof of consent (GDPR Art. 7(1)).
public struct ConsentChange: Hashable, Sendable, Codable, Identifiable {
    /// The change's id (derived from the mutation that made it).
    public var id: String
    /// Which consent.
    public var kind: ConsentKind
    /// Granted or withdrawn.
    public var granted: Bool
    /// The stamp that orders it against other changes of the same consent.
    public var stamp: HLCTimestamp
    /// When the member made it (corrected device time).
    public var at: Timestamp
    /// Where it came from.
    public var source: ChangeSource

    /// Creates a consent change.
    public init(id: String, kind: ConsentKind, granted: Bool, stamp: HLCTimestamp, at: Timestamp, source: ChangeSource)
    {
        self.id = id
        self.kind = kind
        self.granted = granted
        self.stamp = stamp
        self.at = at
        self.source = source
    }

    /// Whether this change wins over `other`: the later stamp wins; on an exact tie the withdrawal wins;
    /// between two equal values on a tie, the source decides (only to be deterministic).
    public func wins(over other: ConsentChange) -> Bool {
        if stamp != other.stamp { return stamp > other.stamp }
        if granted != other.granted { return !granted }
        return (source.tieBreakKey, id) > (other.source.tieBreakKey, other.id)
    }
}

/// The current value of each consent, decided from the full history. Order of arrival does not matter.
///
/// The winner of each consent is kept as changes are recorded (``ConsentChange/wins(over:)`` is a total order),
/// so reading a consent or recording a change never walks the history.
public struct ConsentHistory: Hashable, Sendable, Codable {
    /// Every change, in the order it was recorded.
    public private(set) var changes: [ConsentChange]
    /// The ids in ``changes``.
    private var recorded: Set<String> = []
    /// The winning change of each consent that was ever set.
    private var winners: [ConsentKind: ConsentChange] = [:]

    /// Creates a history from recorded changes.
    public init(changes: [ConsentChange] = []) {
        self.changes = []
        for change in changes { record(change) }
    }

    private enum CodingKeys: String, CodingKey {
        case changes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(changes: try container.decode([ConsentChange].self, forKey: .changes))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(changes, forKey: .changes)
    }

    /// Records a change (once per id).
    public mutating func record(_ change: ConsentChange) {
        guard recorded.insert(change.id).inserted else { return }
        changes.append(change)
        if winners[change.kind].map({ change.wins(over: $0) }) ?? true { winners[change.kind] = change }
    }

    /// The winning change for a consent, or nil if the member never set it (not granted).
    public func current(_ kind: ConsentKind) -> ConsentChange? { winners[kind] }

    /// Whether a consent is granted now (never set means not granted).
    public func isGranted(_ kind: ConsentKind) -> Bool { current(kind)?.granted ?? false }
}
