public import LoyaltyCore

/// A value a segment rule reads.
public enum FactValue: Hashable, Sendable, CustomStringConvertible {
    case number(Double)
    case text(String)
    case truth(Bool)

    public var description: String {
        switch self {
        case .number(let number): Literal.plain(number)
        case .text(let text): text
        case .truth(let truth): String(truth)
        }
    }

    /// Compares with a literal the type check accepted for this value's attribute.
    func compare(_ comparison: Comparison, _ literal: Literal.Value) -> Bool {
        switch (self, literal) {
        case (.number(let value), .number(let other)):
            switch comparison {
            case .equal: return value == other
            case .notEqual: return value != other
            case .less: return value < other
            case .lessOrEqual: return value <= other
            case .greater: return value > other
            case .greaterOrEqual: return value >= other
            }
        case (.text(let value), .word(let other)), (.text(let value), .quoted(let other)):
            return comparison == .equal ? value == other : value != other
        default:
            return false
        }
    }
}

/// Everything a segment rule may read of one member: the figures, the consents given, the survey answers.
public struct MemberFacts: Sendable, Hashable {
    public var figures: MemberFigures
    public var consents: Set<ConsentKind>
    public var answers: [String: [String: String]]

    public init(figures: MemberFigures, consents: Set<ConsentKind>, answers: [String: [String: String]]) {
        self.figures = figures
        self.consents = consents
        self.answers = answers
    }

    /// The facts of a member's history at `now` (RFM scores to be set by the caller, who sees the population).
    public init(_ history: MemberHistory, at now: Timestamp, rules: AnalysisRules = AnalysisRules()) {
        self.init(
            figures: MemberFigures(history, at: now, rules: rules), consents: history.consents,
            answers: history.answers)
    }

    /// The value of an attribute of ``SegmentAttributes/all``, or nil where the member has none.
    public func value(of attribute: String) -> FactValue? {
        let number = { (value: Int?) in value.map { FactValue.number(Double($0)) } }
        let money = { (value: Money) in FactValue.number(Double(value.minorUnits) / 100) }
        switch attribute {
        case "recency": return number(figures.recencyDays)
        case "frequency": return number(figures.frequency)
        case "monetary", "value": return money(figures.monetary)
        case "predicted_value": return money(figures.predictedValue)
        case "r": return number(figures.rfm?.recency)
        case "f": return number(figures.rfm?.frequency)
        case "m": return number(figures.rfm?.monetary)
        case "earned": return number(figures.pointsEarned)
        case "redeemed": return number(figures.pointsRedeemed)
        case "expired": return number(figures.pointsExpired)
        case "held": return number(figures.pointsHeld)
        case "days_since_redemption": return number(figures.daysSinceRedemption)
        case "satisfaction": return figures.satisfaction.map(FactValue.number)
        case "age": return number(figures.age)
        case "age_band": return figures.ageBand.map(FactValue.text)
        case "postcode_area": return figures.postcodeArea.map(FactValue.text)
        case "tier": return figures.tier.map(FactValue.text)
        case "stage": return .text(figures.stage.rawValue)
        default: return nil
        }
    }
}
