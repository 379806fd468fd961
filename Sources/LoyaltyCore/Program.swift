public import Foundation

/// The rules of a loyalty programme: how points are earned, held back, spent and lost, and how tiers work.
///
/// Loaded from JSON (see `Fixtures/program.json`); ``validate()`` checks that the rules hold together.
public struct Program: Hashable, Sendable, Codable {
    /// Programme identifier, e.g. `de-retail`.
    public var id: String
    /// Name shown to members.
    public var name: String
    /// ISO 4217 code of the currency purchases are made in.
    public var currency: String
    /// IANA time zone that calendar rules (end of day, quarter, year) are judged in, e.g. `Europe/Berlin`.
    public var timeZone: String
    /// Points earned per whole currency unit spent; fractions of a unit earn nothing (rounded down).
    public var pointsPerCurrencyUnit: Int
    /// A member needs at least this many available points before any can be redeemed.
    public var minimumRedemption: Int
    /// Days earned purchase points stay pending (the return window) before they can be spent.
    public var pendingDays: Int
    /// When an earned lot expires.
    public var expiry: ExpiryPolicy
    /// Days after the purchase within which a member may claim a receipt.
    public var receiptClaimDays: Int
    /// How long before now a device may say it acted and still be judged at that time (offline grace).
    public var offlineGrace: TimeSpan
    /// How many days ahead "expiring soon" looks.
    public var expiringSoonDays: Int
    /// The tier ladder and its rules.
    public var tiers: TierRules
    /// How points are reserved for devices (``AllowancePolicy/standard`` when the JSON names none).
    public var allowances: AllowancePolicy
    /// What one point is worth to the programme, in the currency's minor units (1: a point is worth a cent; 1 when
    /// the JSON names none): the programme report's liability in money is points × this.
    public var pointValue: Int
    /// What becomes of an erased member's points: `forfeit` (the default) or `payOut` (docs/privacy.md).
    public var erasedPoints: ErasedPoints

    /// What becomes of an erased member's points.
    public enum ErasedPoints: String, Hashable, Sendable, Codable {
        case forfeit
        case payOut
    }

    /// Creates a programme from its rules.
    public init(
        id: String, name: String, currency: String, timeZone: String, pointsPerCurrencyUnit: Int,
        minimumRedemption: Int, pendingDays: Int, expiry: ExpiryPolicy, receiptClaimDays: Int,
        offlineGrace: TimeSpan, expiringSoonDays: Int, tiers: TierRules, allowances: AllowancePolicy = .standard,
        pointValue: Int = 1, erasedPoints: ErasedPoints = .forfeit
    ) {
        self.id = id
        self.name = name
        self.currency = currency
        self.timeZone = timeZone
        self.pointsPerCurrencyUnit = pointsPerCurrencyUnit
        self.minimumRedemption = minimumRedemption
        self.pendingDays = pendingDays
        self.expiry = expiry
        self.receiptClaimDays = receiptClaimDays
        self.offlineGrace = offlineGrace
        self.expiringSoonDays = expiringSoonDays
        self.tiers = tiers
        self.allowances = allowances
        self.pointValue = pointValue
        self.erasedPoints = erasedPoints
    }

    private enum CodingKeys: String, CodingKey {
        case id, name, currency, timeZone, pointsPerCurrencyUnit, minimumRedemption, pendingDays, expiry
        case receiptClaimDays, offlineGrace, expiringSoonDays, tiers, allowances, pointValue, erasedPoints
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id), name: try container.decode(String.self, forKey: .name),
            currency: try container.decode(String.self, forKey: .currency),
            timeZone: try container.decode(String.self, forKey: .timeZone),
            pointsPerCurrencyUnit: try container.decode(Int.self, forKey: .pointsPerCurrencyUnit),
            minimumRedemption: try container.decode(Int.self, forKey: .minimumRedemption),
            pendingDays: try container.decode(Int.self, forKey: .pendingDays),
            expiry: try container.decode(ExpiryPolicy.self, forKey: .expiry),
            receiptClaimDays: try container.decode(Int.self, forKey: .receiptClaimDays),
            offlineGrace: try container.decode(TimeSpan.self, forKey: .offlineGrace),
            expiringSoonDays: try container.decode(Int.self, forKey: .expiringSoonDays),
            tiers: try container.decode(TierRules.self, forKey: .tiers),
            allowances: try container.decodeIfPresent(AllowancePolicy.self, forKey: .allowances) ?? .standard,
            pointValue: try container.decodeIfPresent(Int.self, forKey: .pointValue) ?? 1,
            erasedPoints: try container.decodeIfPresent(ErasedPoints.self, forKey: .erasedPoints) ?? .forfeit)
    }

    /// Decodes a programme from JSON and validates it.
    public static func decode(json: Data) throws -> Program {
        let program = try JSONDecoder().decode(Program.self, from: json)
        try program.validate()
        return program
    }

    /// The programme's time zone.
    public var zone: TimeZone { TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")! }

    /// Points a purchase of this amount earns: whole currency units times the rate, rounded down.
    public func points(for amount: Money) -> Int {
        Int(amount.minorUnits / 100) * pointsPerCurrencyUnit
    }

    /// Checks that the rules hold together; the error names the first rule that does not.
    public func validate() throws(LoyaltyError) {
        func require(_ condition: Bool, _ message: String) throws(LoyaltyError) {
            if !condition { throw LoyaltyError(.invalidProgram, "programme '\(id)': \(message)") }
        }
        try require(!id.isEmpty, "id must not be empty")
        try require(currency.count == 3 && currency.allSatisfy(\.isUppercase), "currency must be an ISO 4217 code")
        try require(TimeZone(identifier: timeZone) != nil, "timeZone '\(timeZone)' is not an IANA time zone")
        try require((1...1000).contains(pointsPerCurrencyUnit), "pointsPerCurrencyUnit must be 1...1000")
        try require((1...10_000).contains(pointValue), "pointValue must be 1...10000 (minor units a point is worth)")
        try require(minimumRedemption >= 0, "minimumRedemption must not be negative")
        try require((0...365).contains(pendingDays), "pendingDays must be 0...365")
        try require((1...3650).contains(receiptClaimDays), "receiptClaimDays must be 1...3650")
        try require(offlineGrace >= .zero && offlineGrace <= .days(30), "offlineGrace must be between 0 and 30d")
        try require((1...365).contains(expiringSoonDays), "expiringSoonDays must be 1...365")
        switch expiry {
        case .never: break
        case .monthsAfterEarning(let months): try require((1...120).contains(months), "expiry months must be 1...120")
        case .endOfQuarter(let later): try require((0...40).contains(later), "expiry quarters must be 0...40")
        case .endOfYear(let later): try require((0...10).contains(later), "expiry years must be 0...10")
        }
        try tiers.validate(program: id)
        try allowances.validate(program: id)
    }

    /// When the return window of a purchase made at `purchasedAt` ends (its points unlock), or nil when there is
    /// none. The window is `pendingDays` calendar days in the programme's time zone, ending at the same local time
    /// of day as the purchase, so that a change to or from daylight saving time moves it by no hour.
    public func returnWindowEnd(forPurchaseAt purchasedAt: Timestamp) -> Timestamp? {
        guard pendingDays > 0 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let end = calendar.date(byAdding: .day, value: pendingDays, to: purchasedAt.date)!
        // Foundation works in seconds as floating point: keep the purchase's milliseconds exactly.
        let shift = Timestamp(end).millisecondsSince1970 - purchasedAt.millisecondsSince1970
        let wholeSeconds = (shift + 500).quotientAndRemainder(dividingBy: 1000).quotient * 1000
        return purchasedAt.adding(.milliseconds(wholeSeconds))
    }

    /// When a lot earned at `earnedAt` expires, or nil if it never does. Expiry falls on the last millisecond
    /// of the day (in the programme's time zone) the policy names.
    public func expiryDate(forLotEarnedAt earnedAt: Timestamp) -> Timestamp? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let day = CalendarDate.of(earnedAt, in: zone)
        let lastDay: CalendarDate
        switch expiry {
        case .never:
            return nil
        case .monthsAfterEarning(let months):
            let shifted = calendar.date(byAdding: .month, value: months, to: earnedAt.date)!
            lastDay = CalendarDate.of(Timestamp(shifted), in: zone)
        case .endOfQuarter(let laterQuarters):
            let quarterIndex = (day.month - 1) / 3 + laterQuarters
            let year = day.year + quarterIndex / 4
            let lastMonth = (quarterIndex % 4) * 3 + 3
            lastDay = CalendarDate(
                year: year, month: lastMonth, day: CalendarDate.daysIn(month: lastMonth, year: year))!
        case .endOfYear(let laterYears):
            lastDay = CalendarDate(year: day.year + laterYears, month: 12, day: 31)!
        }
        let nextDay = calendar.date(byAdding: .day, value: 1, to: lastDay.start(in: zone).date)!
        return Timestamp(nextDay).adding(.milliseconds(-1))
    }
}

/// When earned points expire.
public enum ExpiryPolicy: Hashable, Sendable, Codable {
    /// Points never expire.
    case never
    /// At the end of the day N months after earning (24 is common in German retail).
    case monthsAfterEarning(Int)
    /// At the end of the quarter of earning, plus this many further quarters.
    case endOfQuarter(laterQuarters: Int)
    /// At the end of the year of earning, plus this many further years.
    case endOfYear(laterYears: Int)
}

extension ExpiryPolicy {
    private enum CodingKeys: String, CodingKey { case rule, months, laterQuarters, laterYears }

    /// Decodes `{"rule": "never"}`, `{"rule": "monthsAfterEarning", "months": 24}`,
    /// `{"rule": "endOfQuarter", "laterQuarters": 4}` or `{"rule": "endOfYear", "laterYears": 1}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let rule = try container.decode(String.self, forKey: .rule)
        switch rule {
        case "never": self = .never
        case "monthsAfterEarning": self = .monthsAfterEarning(try container.decode(Int.self, forKey: .months))
        case "endOfQuarter":
            self = .endOfQuarter(laterQuarters: try container.decodeIfPresent(Int.self, forKey: .laterQuarters) ?? 0)
        case "endOfYear":
            self = .endOfYear(laterYears: try container.decodeIfPresent(Int.self, forKey: .laterYears) ?? 0)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .rule, in: container,
                debugDescription:
                    "unknown expiry rule '\(rule)'; use never, monthsAfterEarning, endOfQuarter or endOfYear")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .never:
            try container.encode("never", forKey: .rule)
        case .monthsAfterEarning(let months):
            try container.encode("monthsAfterEarning", forKey: .rule)
            try container.encode(months, forKey: .months)
        case .endOfQuarter(let later):
            try container.encode("endOfQuarter", forKey: .rule)
            try container.encode(later, forKey: .laterQuarters)
        case .endOfYear(let later):
            try container.encode("endOfYear", forKey: .rule)
            try container.encode(later, forKey: .laterYears)
        }
    }
}
