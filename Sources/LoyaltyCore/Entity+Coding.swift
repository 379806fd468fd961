public import Foundation

extension Entity {
    private enum CodingKeys: String, CodingKey { case kind, entity }

    /// Decodes `{"kind": "lot", "entity": {...}}`, the form the change feed and the stores use.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(EntityKey.Kind.self, forKey: .kind)
        let payload = try container.superDecoder(forKey: .entity)
        self = try Entity.decode(kind: kind, from: payload)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key.kind, forKey: .kind)
        try encodePayload(to: container.superEncoder(forKey: .entity))
    }

    /// Decodes an entity's state of a known kind (without the kind wrapper).
    public static func decode(kind: EntityKey.Kind, from decoder: any Decoder) throws -> Entity {
        switch kind {
        case .member: .member(try MemberRecord(from: decoder))
        case .card: .card(try Card(from: decoder))
        case .lot: .lot(try EarnLot(from: decoder))
        case .ledgerEntry: .ledgerEntry(try LedgerEntry(from: decoder))
        case .account: .account(try PointsAccount(from: decoder))
        case .tier: .tier(try TierStatus(from: decoder))
        case .offer: .offer(try Offer(from: decoder))
        case .memberOffer: .memberOffer(try MemberOffer(from: decoder))
        case .reward: .reward(try Reward(from: decoder))
        case .voucher: .voucher(try Voucher(from: decoder))
        case .survey: .survey(try Survey(from: decoder))
        case .surveyResponse: .surveyResponse(try SurveyResponse(from: decoder))
        case .receiptClaim: .receiptClaim(try ReceiptClaim(from: decoder))
        case .profileField: .profileField(try ProfileFieldValue(from: decoder))
        case .consentChange: .consentChange(try ConsentChange(from: decoder))
        case .conflict: .conflict(try ConflictRecord(from: decoder))
        case .program: .program(try Program(from: decoder))
        case .allowance: .allowance(try Allowance(from: decoder))
        }
    }

    /// Decodes an entity's state of a known kind from JSON. Lots and ledger entries, nearly every row of a large
    /// member, are read byte by byte when they are in the shape this package writes (``ByteReader``); anything
    /// else, and any lot or entry that reader gives up on, goes through Foundation's decoder.
    public static func decode(kind: EntityKey.Kind, json: Data) throws -> Entity {
        if let entity = decodeQuickly(kind: kind, json: json) { return entity }
        return try JSONDecoder().decode(PayloadBox.self, from: json, configuration: kind).entity
    }

    private static func decodeQuickly(kind: EntityKey.Kind, json: Data) -> Entity? {
        guard kind == .lot || kind == .ledgerEntry else { return nil }
        return json.withUnsafeBytes { bytes -> Entity? in
            var reader = ByteReader(bytes: bytes)
            let entity = kind == .lot ? reader.lot().map(Entity.lot) : reader.ledgerEntry().map(Entity.ledgerEntry)
            return reader.atEnd ? entity : nil
        }
    }

    /// Encodes the entity's state (without the kind wrapper).
    public func encodePayload(to encoder: any Encoder) throws {
        switch self {
        case .member(let value): try value.encode(to: encoder)
        case .card(let value): try value.encode(to: encoder)
        case .lot(let value): try value.encode(to: encoder)
        case .ledgerEntry(let value): try value.encode(to: encoder)
        case .account(let value): try value.encode(to: encoder)
        case .tier(let value): try value.encode(to: encoder)
        case .offer(let value): try value.encode(to: encoder)
        case .memberOffer(let value): try value.encode(to: encoder)
        case .reward(let value): try value.encode(to: encoder)
        case .voucher(let value): try value.encode(to: encoder)
        case .allowance(let value): try value.encode(to: encoder)
        case .survey(let value): try value.encode(to: encoder)
        case .surveyResponse(let value): try value.encode(to: encoder)
        case .receiptClaim(let value): try value.encode(to: encoder)
        case .profileField(let value): try value.encode(to: encoder)
        case .consentChange(let value): try value.encode(to: encoder)
        case .conflict(let value): try value.encode(to: encoder)
        case .program(let value): try value.encode(to: encoder)
        }
    }

    /// The entity's state as JSON (without the kind wrapper).
    public func payloadJSON() throws -> Data {
        try StreamingJSON.encode(PayloadBox(entity: self))
    }

    /// Whether the entity belongs to the whole programme (the catalogue and rules) rather than to one member.
    public var isProgrammeWide: Bool {
        switch self {
        case .offer, .reward, .survey, .program: true
        default: false
        }
    }
}

/// Encodes or decodes just an entity's payload.
private struct PayloadBox: Encodable, DecodableWithConfiguration {
    let entity: Entity
    init(entity: Entity) { self.entity = entity }
    init(from decoder: any Decoder, configuration kind: EntityKey.Kind) throws {
        entity = try Entity.decode(kind: kind, from: decoder)
    }
    func encode(to encoder: any Encoder) throws { try entity.encodePayload(to: encoder) }
}
