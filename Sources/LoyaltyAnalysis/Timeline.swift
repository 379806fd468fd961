public import LoyaltyCore

/// Where an event came from (docs/analysis.md, "Touchpoints and the timeline").
public enum Touchpoint: String, Sendable, Hashable, Codable, CaseIterable {
    /// The member's app, on one of the member's devices.
    case app
    /// A till in a shop.
    case till
    case web
    /// The service desk or back office.
    case `operator`
    case partner
    /// The programme's own rules (a lot unlocking or expiring, owed points settled).
    case programme
    /// Recorded before events carried their touchpoint.
    case unknown
}

/// One event of a member's life with the programme, for the operator's timeline.
public struct TimelineEvent: Sendable, Hashable {
    public var at: Timestamp
    /// What happened: enrolment, earn, unlock, spend, expire, reversal, adjustment, settlement, consent, profile.
    public var kind: String
    public var channel: Touchpoint
    /// The device, the shop or nil where not known.
    public var place: String?
    /// The points it moved (available and pending together); nil for an event without points.
    public var points: Int?
    /// What it was about: a transaction, a receipt, a reward, a consent, the operator's reason.
    public var detail: String
}

/// Where a till transaction happened, as the till said: its shop and the basket's categories.
public struct TillPlace: Sendable, Hashable {
    public var shop: String?
    public var categories: [String]

    public init(shop: String?, categories: [String]) {
        self.shop = shop
        self.categories = categories
    }
}

/// A member's events from the member's entities (the feed's raw events), newest first.
public enum Timeline {
    /// `shops` gives the shop of each receipt code the member claimed; `tills` the shop and categories of each till
    /// transaction (purchase, redemption or return) by its id.
    public static func events(
        of entities: [Entity], shops: [String: String] = [:], tills: [String: TillPlace] = [:]
    ) -> [TimelineEvent] {
        var events: [TimelineEvent] = []
        for entity in entities {
            switch entity {
            case .member(let member):
                events.append(
                    TimelineEvent(
                        at: member.createdAt, kind: "enrolment", channel: .app, place: nil, points: nil,
                        detail: "enrolled"))
            case .ledgerEntry(let entry):
                var (channel, place, detail) = source(of: entry, shops: shops)
                if channel == .till, let transaction = tillTransaction(of: entry), let till = tills[transaction] {
                    place = till.shop
                    if !till.categories.isEmpty { detail += " (\(till.categories.joined(separator: ", ")))" }
                }
                events.append(
                    TimelineEvent(
                        at: entry.at, kind: entry.kind.rawValue, channel: channel, place: place,
                        points: entry.available + entry.pending, detail: detail))
            case .consentChange(let change):
                let (channel, place) = origin(change.source)
                events.append(
                    TimelineEvent(
                        at: change.at, kind: "consent", channel: channel, place: place, points: nil,
                        detail: "\(change.kind.rawValue) \(change.granted ? "granted" : "withdrawn")"))
            case .profileField(let field):
                let (channel, place) = origin(field.source)
                events.append(
                    TimelineEvent(
                        at: Timestamp(millisecondsSince1970: field.stamp.wallMilliseconds), kind: "profile",
                        channel: channel, place: place, points: nil, detail: "\(field.field.rawValue) changed"))
            default:
                continue
            }
        }
        return events.sorted { ($0.at, $0.kind, $0.detail) > ($1.at, $1.kind, $1.detail) }
    }

    static func origin(_ source: ChangeSource) -> (Touchpoint, String?) {
        switch source {
        case .device(let device): (.app, device.rawValue)
        case .operator: (.operator, nil)
        }
    }

    /// The till transaction a ledger entry came from (`earn:purchase:T-1`, `till:T-2`, `reversal:RT-1`), if any.
    public static func tillTransaction(of entry: LedgerEntry) -> String? {
        let parts = entry.id.rawValue.split(separator: ":", maxSplits: 2).map(String.init)
        switch (parts.first, parts.count) {
        case ("earn", 3) where parts[1] == "purchase": return parts[2]
        case ("till", 2...), ("reversal", 2...): return parts.dropFirst().joined(separator: ":")
        default: return nil
        }
    }

    /// A ledger entry's touchpoint, read from what its id says caused it (`earn:purchase:T-1`, `earn:receipt:R-1`,
    /// `spend:DEVICE:SEQUENCE`, `till:T-2`, `reversal:RT-1`, `adjustment:…`, `unlock:…`, `expire:…`, `settle:…`).
    static func source(of entry: LedgerEntry, shops: [String: String]) -> (Touchpoint, String?, String) {
        let id = entry.id.rawValue
        let parts = id.split(separator: ":", maxSplits: 2).map(String.init)
        let rest = parts.dropFirst().joined(separator: ":")
        switch (parts.first, parts.count > 1 ? parts[1] : nil) {
        case ("earn", "purchase"): return (.till, nil, "purchase \(parts.count > 2 ? parts[2] : "")")
        case ("earn", "receipt"):
            let code = parts.count > 2 ? parts[2] : ""
            return (.app, shops[code], "receipt \(code) claimed")
        case ("earn", "survey"): return (.app, nil, "survey \(parts.count > 2 ? parts[2] : "") answered")
        case ("earn", "adjustment"), ("adjustment", _): return (.operator, nil, entry.reference ?? "adjustment")
        case ("earn", _): return (.unknown, nil, rest)
        case ("spend", let device?): return (.app, device, "reward \(entry.reference ?? "")")
        case ("till", _): return (.till, nil, "paid with points, transaction \(rest)")
        case ("reversal", _): return (.till, nil, "return \(rest)")
        case ("unlock", _), ("expire", _), ("settle", _): return (.programme, nil, "lot \(rest)")
        default: return (.unknown, nil, id)
        }
    }
}
