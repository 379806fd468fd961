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

/// A member's events from the member's entities (the feed's raw events), newest first.
public enum Timeline {
    /// `shops` gives the shop of each receipt code the member claimed.
    public static func events(of entities: [Entity], shops: [String: String] = [:]) -> [TimelineEvent] {
        var events: [TimelineEvent] = []
        for entity in entities {
            switch entity {
            case .member(let member):
                events.append(
                    TimelineEvent(
                        at: member.createdAt, kind: "enrolment", channel: .app, place: nil, points: nil,
                        detail: "enrolled"))
            case .ledgerEntry(let entry):
                let (channel, place, detail) = source(of: entry, shops: shops)
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
