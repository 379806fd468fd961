public import Foundation
public import LoyaltyCore
public import OpenAPIRuntime

/// The protocol version this package speaks (the `Loyalty-Protocol` header).
public let loyaltyProtocolVersion = "1"

// MARK: - Stamps and times

extension HLCTimestamp {
    /// The wire form: the 64-bit encoding as decimal digits.
    public var wire: String { String(encoded) }

    /// Parses the wire form.
    public init(wire: String, field: String) throws(LoyaltyError) {
        guard wire.utf8.count <= 20, let value = UInt64(wire) else {
            throw LoyaltyError(
                .malformed, "\(field) must be a stamp written as decimal digits, not '\(wire.prefix(40))'")
        }
        self.init(encoded: value)
    }
}

extension Timestamp {
    /// A wire date (a Foundation date) as a timestamp. Wire dates are whole milliseconds, so the nearest one is
    /// taken: rounding down turned `…52.570Z` into `…52.569` whenever the double fell just below the millisecond.
    public init(wire date: Date) {
        self.init(millisecondsSince1970: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }
    /// The wire form.
    public var wire: Date { date }
}

// MARK: - Mutations

extension LoyaltyCore.Mutation {
    /// The domain mutation a wire mutation says.
    public init(wire: Components.Schemas.Mutation) throws(LoyaltyError) {
        switch wire {
        case .activateOffer(let value): self = .activateOffer(OfferID(value.offerID))
        case .redeemOffer(let value): self = .redeemOffer(OfferID(value.offerID))
        case .redeemReward(let value): self = .redeemReward(RewardID(value.rewardID))
        case .claimReceipt(let value): self = .claimReceipt(code: value.code)
        case .answerSurvey(let value):
            self = .answerSurvey(SurveyID(value.surveyID), answers: value.answers.additionalProperties)
        case .setProfileField(let value):
            guard let field = ProfileField(rawValue: value.field.rawValue) else {
                throw LoyaltyError(.malformed, "field '\(value.field.rawValue)' is not a profile field")
            }
            self = .setProfileField(
                field, value: value.value,
                basedOn: try value.basedOn.map { stamp throws(LoyaltyError) in
                    try HLCTimestamp(wire: stamp, field: "basedOn")
                })
        case .setConsent(let value):
            guard let kind = ConsentKind(rawValue: value.consent.rawValue) else {
                throw LoyaltyError(.malformed, "consent '\(value.consent.rawValue)' is not a consent kind")
            }
            self = .setConsent(kind, granted: value.granted)
        case .requestErasure: self = .requestErasure
        }
    }

    /// The wire form.
    public var wire: Components.Schemas.Mutation {
        switch self {
        case .activateOffer(let id): .activateOffer(.init(kind: kind, offerID: id.rawValue))
        case .redeemOffer(let id): .redeemOffer(.init(kind: kind, offerID: id.rawValue))
        case .redeemReward(let id): .redeemReward(.init(kind: kind, rewardID: id.rawValue))
        case .claimReceipt(let code): .claimReceipt(.init(kind: kind, code: code))
        case .answerSurvey(let id, let answers):
            .answerSurvey(.init(kind: kind, surveyID: id.rawValue, answers: .init(additionalProperties: answers)))
        case .setProfileField(let field, let value, let basedOn):
            .setProfileField(
                .init(kind: kind, field: .init(rawValue: field.rawValue)!, value: value, basedOn: basedOn?.wire))
        case .setConsent(let consent, let granted):
            .setConsent(.init(kind: kind, consent: .init(rawValue: consent.rawValue)!, granted: granted))
        case .requestErasure: .requestErasure(.init(kind: kind))
        }
    }
}

extension MutationEnvelope {
    /// The domain envelope of a wire envelope pushed by `device`.
    public init(wire: Components.Schemas.MutationEnvelope, device: DeviceID) throws(LoyaltyError) {
        guard wire.sequence >= 1 else {
            throw LoyaltyError(.malformed, "sequence must be 1 or more, not \(wire.sequence)")
        }
        self.init(
            deviceID: device, sequence: UInt64(wire.sequence),
            stamp: try HLCTimestamp(wire: wire.stamp, field: "stamp"),
            deviceTime: Timestamp(wire: wire.deviceTime), mutation: try LoyaltyCore.Mutation(wire: wire.mutation))
    }

    /// The wire form (the device is named once per push, not per mutation).
    public var wire: Components.Schemas.MutationEnvelope {
        .init(sequence: Int64(sequence), stamp: stamp.wire, deviceTime: deviceTime.wire, mutation: mutation.wire)
    }
}

// MARK: - Results

extension MutationResult {
    /// The wire form.
    public var wire: Components.Schemas.MutationResult {
        switch status {
        case .applied: .init(sequence: Int64(sequence), status: .applied)
        case .adjusted(let message): .init(sequence: Int64(sequence), status: .adjusted, message: message)
        case .rejected(let rejection):
            .init(
                sequence: Int64(sequence), status: .rejected, code: rejection.code.rawValue, message: rejection.message)
        }
    }

    /// The domain result of a wire result.
    public init(wire: Components.Schemas.MutationResult) throws(LoyaltyError) {
        guard wire.sequence >= 1 else { throw LoyaltyError(.malformed, "results[].sequence must be 1 or more") }
        let status: MutationStatus
        switch wire.status {
        case .applied: status = .applied
        case .adjusted: status = .adjusted(message: wire.message ?? "")
        case .rejected:
            status = .rejected(
                MutationRejection(MutationRejection.Code(rawValue: wire.code ?? "rejected"), wire.message ?? ""))
        }
        self.init(sequence: UInt64(wire.sequence), status: status)
    }
}

// MARK: - Push and pull

extension PushRequest {
    /// The domain push of a wire push.
    public init(wire: Components.Schemas.PushRequest) throws(LoyaltyError) {
        let device = DeviceID(wire.deviceID)
        var mutations: [MutationEnvelope] = []
        for (index, envelope) in wire.mutations.enumerated() {
            do {
                mutations.append(try MutationEnvelope(wire: envelope, device: device))
            } catch {
                throw LoyaltyError(.malformed, "mutations[\(index)]: \(error.message)")
            }
        }
        self.init(deviceID: device, mutations: mutations)
    }

    /// The wire form.
    public var wire: Components.Schemas.PushRequest {
        .init(deviceID: deviceID.rawValue, mutations: mutations.map(\.wire))
    }
}

extension PushResponse {
    /// The wire form.
    public var wire: Components.Schemas.PushResponse {
        .init(
            results: results.map(\.wire), lastProcessedSequence: Int64(lastProcessedSequence),
            serverTime: serverTime.wire,
            serverStamp: serverStamp.wire)
    }

    /// The domain response of a wire response.
    public init(wire: Components.Schemas.PushResponse) throws(LoyaltyError) {
        var results: [MutationResult] = []
        for result in wire.results { results.append(try MutationResult(wire: result)) }
        self.init(
            results: results, lastProcessedSequence: UInt64(max(wire.lastProcessedSequence, 0)),
            serverTime: Timestamp(wire: wire.serverTime),
            serverStamp: try HLCTimestamp(wire: wire.serverStamp, field: "serverStamp"))
    }
}

extension PullRequest {
    /// The domain pull of a wire pull; `defaultLimit` when the device names none.
    public init(wire: Components.Schemas.PullRequest, defaultLimit: Int) throws(LoyaltyError) {
        guard wire.cursor >= 0 else { throw LoyaltyError(.malformed, "cursor must be 0 or more, not \(wire.cursor)") }
        var allowance: AllowanceRequest?
        if let asked = wire.allowance {
            guard asked.through >= 0, (asked.release ?? 1) >= 1 else {
                throw LoyaltyError(.malformed, "allowance: through must be 0 or more and release 1 or more")
            }
            allowance = AllowanceRequest(release: asked.release, through: UInt64(asked.through))
        }
        self.init(
            deviceID: DeviceID(wire.deviceID), cursor: Cursor(version: UInt64(wire.cursor)),
            limit: wire.limit ?? defaultLimit, allowance: allowance)
    }

    /// The wire form.
    public var wire: Components.Schemas.PullRequest {
        .init(
            deviceID: deviceID.rawValue, cursor: Int64(cursor.version), limit: limit,
            allowance: allowance.map { .init(release: $0.release, through: Int64($0.through)) })
    }
}

// The pull answer through the generated types. Over HTTP both sides use `PullJSON` instead (it keeps the stored
// bytes); these stay as the reference it is held to (`PullJSONTests`, `LiveTests`), and hold every entity to the
// contract's schema of its kind (`EntitySchemaTests`).
extension Change {
    /// The wire form: kind, id, and the entity's state as the contract's type of its kind.
    public func wire() throws -> Components.Schemas.Change {
        let key = self.key
        let kind = Components.Schemas.Change.KindPayload(rawValue: key.kind.rawValue)!
        switch operation {
        case .upsert(let entity):
            return .init(
                version: Int64(version), kind: kind, id: key.id, deleted: false,
                entity: try Self.wireEntity(kind: key.kind, json: entity.payloadJSON()))
        case .delete:
            return .init(version: Int64(version), kind: kind, id: key.id, deleted: true)
        }
    }

    /// An entity's JSON state decoded strictly as the contract's type of its kind: a field the schema does not
    /// name, a required one missing or one of another type fails.
    public static func wireEntity(kind: EntityKey.Kind, json: Data) throws -> Components.Schemas.Change.EntityPayload {
        let decoder = JSONDecoder()
        return switch kind {
        case .member: .MemberEntity(try decoder.decode(Components.Schemas.MemberEntity.self, from: json))
        case .card: .CardEntity(try decoder.decode(Components.Schemas.CardEntity.self, from: json))
        case .lot: .LotEntity(try decoder.decode(Components.Schemas.LotEntity.self, from: json))
        case .ledgerEntry: .LedgerEntryEntity(try decoder.decode(Components.Schemas.LedgerEntryEntity.self, from: json))
        case .account: .AccountEntity(try decoder.decode(Components.Schemas.AccountEntity.self, from: json))
        case .tier: .TierEntity(try decoder.decode(Components.Schemas.TierEntity.self, from: json))
        case .offer: .OfferEntity(try decoder.decode(Components.Schemas.OfferEntity.self, from: json))
        case .memberOffer: .MemberOfferEntity(try decoder.decode(Components.Schemas.MemberOfferEntity.self, from: json))
        case .reward: .RewardEntity(try decoder.decode(Components.Schemas.RewardEntity.self, from: json))
        case .voucher: .VoucherEntity(try decoder.decode(Components.Schemas.VoucherEntity.self, from: json))
        case .survey: .SurveyEntity(try decoder.decode(Components.Schemas.SurveyEntity.self, from: json))
        case .surveyResponse:
            .SurveyResponseEntity(try decoder.decode(Components.Schemas.SurveyResponseEntity.self, from: json))
        case .receiptClaim:
            .ReceiptClaimEntity(try decoder.decode(Components.Schemas.ReceiptClaimEntity.self, from: json))
        case .profileField:
            .ProfileFieldEntity(try decoder.decode(Components.Schemas.ProfileFieldEntity.self, from: json))
        case .consentChange:
            .ConsentChangeEntity(try decoder.decode(Components.Schemas.ConsentChangeEntity.self, from: json))
        case .conflict: .ConflictEntity(try decoder.decode(Components.Schemas.ConflictEntity.self, from: json))
        case .program: .ProgramEntity(try decoder.decode(Components.Schemas.ProgramEntity.self, from: json))
        case .allowance: .AllowanceEntity(try decoder.decode(Components.Schemas.AllowanceEntity.self, from: json))
        }
    }

    /// The kind and JSON state of an entity in the contract's types.
    public static func json(of payload: Components.Schemas.Change.EntityPayload) throws -> (EntityKey.Kind, Data) {
        let encoder = JSONEncoder()
        return switch payload {
        case .MemberEntity(let value): (.member, try encoder.encode(value))
        case .CardEntity(let value): (.card, try encoder.encode(value))
        case .LotEntity(let value): (.lot, try encoder.encode(value))
        case .LedgerEntryEntity(let value): (.ledgerEntry, try encoder.encode(value))
        case .AccountEntity(let value): (.account, try encoder.encode(value))
        case .TierEntity(let value): (.tier, try encoder.encode(value))
        case .OfferEntity(let value): (.offer, try encoder.encode(value))
        case .MemberOfferEntity(let value): (.memberOffer, try encoder.encode(value))
        case .RewardEntity(let value): (.reward, try encoder.encode(value))
        case .VoucherEntity(let value): (.voucher, try encoder.encode(value))
        case .SurveyEntity(let value): (.survey, try encoder.encode(value))
        case .SurveyResponseEntity(let value): (.surveyResponse, try encoder.encode(value))
        case .ReceiptClaimEntity(let value): (.receiptClaim, try encoder.encode(value))
        case .ProfileFieldEntity(let value): (.profileField, try encoder.encode(value))
        case .ConsentChangeEntity(let value): (.consentChange, try encoder.encode(value))
        case .ConflictEntity(let value): (.conflict, try encoder.encode(value))
        case .ProgramEntity(let value): (.program, try encoder.encode(value))
        case .AllowanceEntity(let value): (.allowance, try encoder.encode(value))
        }
    }

    /// The domain change of a wire change.
    public init(wire: Components.Schemas.Change) throws {
        guard let kind = EntityKey.Kind(rawValue: wire.kind.rawValue) else {
            throw LoyaltyError(.malformed, "unknown kind \(wire.kind)")
        }
        if wire.deleted {
            self.init(version: UInt64(wire.version), operation: .delete(EntityKey(kind, wire.id)))
            return
        }
        guard let payload = wire.entity else { throw LoyaltyError(.malformed, "change \(wire.version) has no entity") }
        let (stated, json) = try Self.json(of: payload)
        // A payload decoded without its kind may have matched another kind's schema; the change's kind decides.
        let entity = stated == kind ? json : try Self.json(of: Self.wireEntity(kind: kind, json: json)).1
        self.init(version: UInt64(wire.version), operation: .upsert(try Entity.decode(kind: kind, json: entity)))
    }
}

extension PullResponse {
    /// The wire form.
    public func wire() throws -> Components.Schemas.PullResponse {
        .init(
            changes: try changes.map { try $0.wire() }, cursor: Int64(cursor.version), hasMore: hasMore, reset: reset,
            lastProcessedSequence: Int64(lastProcessedSequence), serverTime: serverTime.wire,
            serverStamp: serverStamp.wire)
    }

    /// The domain response of a wire response.
    public init(wire: Components.Schemas.PullResponse) throws {
        self.init(
            changes: try wire.changes.map(Change.init(wire:)), cursor: Cursor(version: UInt64(max(wire.cursor, 0))),
            hasMore: wire.hasMore, reset: wire.reset, lastProcessedSequence: UInt64(max(wire.lastProcessedSequence, 0)),
            serverTime: Timestamp(wire: wire.serverTime),
            serverStamp: try HLCTimestamp(wire: wire.serverStamp, field: "serverStamp"))
    }
}

extension Configuration {
    /// The runtime configuration both sides use: RFC 3339 dates with milliseconds.
    public static var loyalty: Configuration { Configuration(dateTranscoder: RFC3339DateTranscoder()) }
}
