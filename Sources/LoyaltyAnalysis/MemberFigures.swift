public import LoyaltyCore

/// Where a member is in their life with the programme (docs/analysis.md, "Lifecycle stages").
public enum LifecycleStage: String, CaseIterable, Sendable, Hashable, Codable {
    case new
    case active
    case atRisk = "at-risk"
    case lapsed
    case wonBack = "won-back"
}

/// The thresholds and factors of the analysis. Every figure and stage is a pure function of a member's history,
/// the moment asked about and these.
public struct AnalysisRules: Sendable, Hashable, Codable {
    /// A member enrolled within this many days is `new`.
    public var newDays: Int = 30
    /// With fewer than two purchases to judge a usual interval, no purchase for longer than this is `at-risk`.
    public var atRiskDays: Int = 60
    /// With a usual interval (the median gap between purchases), no purchase for longer than this many intervals
    /// is `at-risk` (and never before `minimumAtRiskDays`).
    public var atRiskIntervals: Double = 1.5
    /// A usual interval of a few days does not make a member at risk after a week's holiday.
    public var minimumAtRiskDays: Int = 14
    /// No purchase for this many days or more is `lapsed`.
    public var lapsedDays: Int = 180
    /// A purchase after a gap of `lapsedDays` or more makes the member `won-back` for this many days.
    public var wonBackDays: Int = 90
    /// The share of this year's customers of a stage expected to buy next year, for the predicted value.
    public var retention: [LifecycleStage: Double] = [
        .new: 0.6, .active: 0.8, .atRisk: 0.5, .lapsed: 0.1, .wonBack: 0.6,
    ]

    public init() {}
}

/// One purchase as the analysis sees it: when, and its revenue net of what was returned of it.
public struct PurchaseFact: Sendable, Hashable, Codable {
    public var at: Timestamp
    public var revenue: Money

    public init(at: Timestamp, revenue: Money) {
        self.at = at
        self.revenue = revenue
    }
}

/// What the analysis reads of one member: the raw events, reduced to what the formulas need.
public struct MemberHistory: Sendable, Hashable {
    public var memberID: MemberID
    public var enrolledAt: Timestamp
    /// Purchases, oldest first (receipts claimed count as purchases).
    public var purchases: [PurchaseFact]
    /// When the member redeemed points (rewards, offers paid with points, the till), oldest first.
    public var redemptions: [Timestamp]
    public var pointsEarned: Int
    public var pointsRedeemed: Int
    public var pointsExpired: Int
    /// Available and pending points now.
    public var pointsHeld: Int
    /// The member's answers to rating questions, each on its own scale turned to 1...5.
    public var ratings: [Double]
    public var tier: String?
    public var birthDate: CalendarDate?
    public var postcode: String?
    public var consents: Set<ConsentKind>
    /// Survey answers by survey id, then question id.
    public var answers: [String: [String: String]]

    public init(
        memberID: MemberID, enrolledAt: Timestamp, purchases: [PurchaseFact] = [], redemptions: [Timestamp] = [],
        pointsEarned: Int = 0, pointsRedeemed: Int = 0, pointsExpired: Int = 0, pointsHeld: Int = 0,
        ratings: [Double] = [], tier: String? = nil, birthDate: CalendarDate? = nil, postcode: String? = nil,
        consents: Set<ConsentKind> = [], answers: [String: [String: String]] = [:]
    ) {
        self.memberID = memberID
        self.enrolledAt = enrolledAt
        self.purchases = purchases.sorted { $0.at < $1.at }
        self.redemptions = redemptions.sorted()
        self.pointsEarned = pointsEarned
        self.pointsRedeemed = pointsRedeemed
        self.pointsExpired = pointsExpired
        self.pointsHeld = pointsHeld
        self.ratings = ratings
        self.tier = tier
        self.birthDate = birthDate
        self.postcode = postcode
        self.consents = consents
        self.answers = answers
    }
}

/// A member's figures at one moment (docs/analysis.md, "Member figures"): each a formula over the history.
public struct MemberFigures: Sendable, Hashable, Codable {
    /// Whole days since the last purchase; nil without one.
    public var recencyDays: Int?
    /// Purchases in the 12 months before the moment.
    public var frequency: Int
    /// Revenue of those purchases: the customer value of the last 12 months.
    public var monetary: Money
    /// Revenue of the next 12 months predicted: frequency × average basket × the stage's retention.
    public var predictedValue: Money
    public var pointsEarned: Int
    public var pointsRedeemed: Int
    public var pointsExpired: Int
    public var pointsHeld: Int
    /// Whole days since the last redemption; nil without one.
    public var daysSinceRedemption: Int?
    /// Mean of the rating answers; nil without one.
    public var satisfaction: Double?
    public var tier: String?
    public var stage: LifecycleStage
    /// The RFM scores, 1 to 5, given by ``RFMScoring`` across the members active in the last 24 months; nil for
    /// the others.
    public var rfm: RFMScore?
    /// Whole years of age, and the band, from the birth date.
    public var age: Int?
    public var ageBand: String?
    /// The first two digits of a five-digit postcode.
    public var postcodeArea: String?

    /// The figures of `history` at `now`.
    public init(_ history: MemberHistory, at now: Timestamp, rules: AnalysisRules = AnalysisRules()) {
        let yearAgo = now.adding(.days(-365))
        let lastYear = history.purchases.filter { $0.at > yearAgo && $0.at <= now }
        recencyDays = history.purchases.last { $0.at <= now }.map { Self.days(from: $0.at, to: now) }
        frequency = lastYear.count
        monetary = Money(minorUnits: lastYear.reduce(0) { $0 + $1.revenue.minorUnits })
        stage = Self.stage(history, at: now, rules: rules)
        let basket = frequency == 0 ? 0 : Double(monetary.minorUnits) / Double(frequency)
        let retention = rules.retention[stage] ?? 0
        predictedValue = Money(minorUnits: Int64((Double(frequency) * basket * retention).rounded()))
        pointsEarned = history.pointsEarned
        pointsRedeemed = history.pointsRedeemed
        pointsExpired = history.pointsExpired
        pointsHeld = history.pointsHeld
        daysSinceRedemption = history.redemptions.last { $0 <= now }.map { Self.days(from: $0, to: now) }
        satisfaction = history.ratings.isEmpty ? nil : history.ratings.reduce(0, +) / Double(history.ratings.count)
        tier = history.tier
        rfm = nil
        age = history.birthDate.map { $0.years(until: CalendarDate.utc(now)) }
        ageBand = age.map(Self.band)
        postcodeArea = history.postcode.flatMap(Self.area)
    }

    /// Whole days (of 24 hours) from one moment to a later one.
    static func days(from start: Timestamp, to end: Timestamp) -> Int {
        Int((end.millisecondsSince1970 - start.millisecondsSince1970) / 86_400_000)
    }

    /// The lifecycle stage (docs/analysis.md gives the order in which the rules are tried).
    public static func stage(_ history: MemberHistory, at now: Timestamp, rules: AnalysisRules) -> LifecycleStage {
        if days(from: history.enrolledAt, to: now) < rules.newDays { return .new }
        let purchases = history.purchases.filter { $0.at <= now }.map(\.at)
        // Without a purchase the enrolment is the last sign of life.
        let last = purchases.last ?? history.enrolledAt
        let idle = days(from: last, to: now)
        if idle >= rules.lapsedDays { return .lapsed }
        if purchases.count >= 2, let latest = purchases.last {
            let gap = days(from: purchases[purchases.count - 2], to: latest)
            if gap >= rules.lapsedDays, idle < rules.wonBackDays { return .wonBack }
        }
        if Double(idle) > atRiskThreshold(purchases, rules: rules) { return .atRisk }
        return .active
    }

    /// Days without a purchase after which a member is at risk: 1.5 usual intervals (the median gap between
    /// purchases), at least `minimumAtRiskDays`, or `atRiskDays` with fewer than two purchases.
    public static func atRiskThreshold(_ purchases: [Timestamp], rules: AnalysisRules) -> Double {
        guard purchases.count >= 2 else { return Double(rules.atRiskDays) }
        let gaps = zip(purchases, purchases.dropFirst()).map { Double(days(from: $0, to: $1)) }.sorted()
        let middle = gaps.count / 2
        let median = gaps.count % 2 == 1 ? gaps[middle] : (gaps[middle - 1] + gaps[middle]) / 2
        return max(rules.atRiskIntervals * median, Double(rules.minimumAtRiskDays))
    }

    static func band(_ age: Int) -> String {
        switch age {
        case ..<25: "under-25"
        case 25..<35: "25-34"
        case 35..<45: "35-44"
        case 45..<55: "45-54"
        case 55..<65: "55-64"
        default: "65+"
        }
    }

    /// The first two digits of the first run of exactly five digits in an address.
    static func area(_ address: String) -> String? {
        let characters = Array(address)
        var index = 0
        while index < characters.count {
            guard characters[index].isASCII, characters[index].isNumber else {
                index += 1
                continue
            }
            var end = index
            while end < characters.count, characters[end].isASCII, characters[end].isNumber { end += 1 }
            if end - index == 5 { return String(characters[index..<(index + 2)]) }
            index = end
        }
        return nil
    }
}

/// A member's RFM scores, each 1 (lowest) to 5 (best).
public struct RFMScore: Sendable, Hashable, Codable {
    public var recency: Int
    public var frequency: Int
    public var monetary: Int
}

/// Quintile scores across a population (docs/analysis.md, "Member figures"): a member's score on a measure is 1 +
/// the number of whole fifths of the population that rank strictly below them, so equal values always get equal
/// scores. The same scores come from four cut points of the population (``cutPoints(_:)``), which a run that sees
/// only some members keeps from the last run that saw them all.
public enum RFMScoring {
    /// Members count in the population while they have a purchase in the last 24 months.
    public static func isActive(_ figures: MemberFigures) -> Bool { (figures.recencyDays ?? .max) < 730 }

    /// The cut points of the three measures over a population's figures (nil if nobody is active).
    public static func cutPoints(_ population: [MemberFigures]) -> RFMCutPoints? {
        let active = population.filter(isActive)
        guard !active.isEmpty else { return nil }
        return RFMCutPoints(
            recency: cutPoints(of: active.map { recencyMeasure($0) }),
            frequency: cutPoints(of: active.map { Double($0.frequency) }),
            monetary: cutPoints(of: active.map { Double($0.monetary.minorUnits) }))
    }

    /// A member's scores by a population's cut points; nil for a member not active in 24 months.
    public static func score(_ figures: MemberFigures, by cuts: RFMCutPoints) -> RFMScore? {
        guard isActive(figures) else { return nil }
        return RFMScore(
            recency: score(recencyMeasure(figures), cuts: cuts.recency),
            frequency: score(Double(figures.frequency), cuts: cuts.frequency),
            monetary: score(Double(figures.monetary.minorUnits), cuts: cuts.monetary))
    }

    /// Scores for the members active (a purchase) in the 24 months before the figures' moment; the others get none.
    public static func scores(_ figures: [MemberID: MemberFigures]) -> [MemberID: RFMScore] {
        guard let cuts = cutPoints(Array(figures.values)) else { return [:] }
        return figures.compactMapValues { score($0, by: cuts) }
    }

    /// 1 + ⌊5 × (how many values are strictly below) / count⌋, for each member.
    public static func quintiles(_ values: [MemberID: Double]) -> [MemberID: Int] {
        let cuts = cutPoints(of: Array(values.values))
        return values.mapValues { score($0, cuts: cuts) }
    }

    /// Fewer days since the last purchase is better: the measure ranked is the negated recency.
    static func recencyMeasure(_ figures: MemberFigures) -> Double { -Double(figures.recencyDays ?? 0) }

    /// c_s = the ⌈s·n/5⌉-th smallest value, s = 1...4: a value v has at least ⌈s·n/5⌉ values strictly below it
    /// (so a score above s) exactly when v > c_s.
    public static func cutPoints(of values: [Double]) -> [Double] {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return [] }
        return (1...4).map { fifth in sorted[(fifth * sorted.count + 4) / 5 - 1] }
    }

    public static func score(_ value: Double, cuts: [Double]) -> Int { 1 + cuts.count { value > $0 } }
}

/// The four cut points of each RFM measure (recency negated), from the last run that saw every member.
public struct RFMCutPoints: Sendable, Hashable, Codable {
    public var recency: [Double]
    public var frequency: [Double]
    public var monetary: [Double]
}
