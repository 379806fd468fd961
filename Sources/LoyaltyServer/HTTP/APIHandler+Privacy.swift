internal import Foundation
internal import LoyaltyAPI
internal import LoyaltyCore

// The member's export (docs/privacy.md): the same document for the member's device and for the service desk.
extension APIHandler {
    func exportMyData(_ input: Operations.ExportMyData.Input) async throws -> Operations.ExportMyData.Output {
        let member = try device.memberID
        return .ok(.init(body: .json(try await service.memberData(of: member).export(at: service.now))))
    }

    func adminExportMember(
        _ input: Operations.AdminExportMember.Input
    ) async throws -> Operations.AdminExportMember.Output {
        let data = try await service.memberData(of: MemberID(input.path.memberID))
        return .ok(.init(body: .json(try data.export(at: service.now))))
    }
}

extension MemberData {
    /// The export, version 1: each entity decoded strictly as the contract's type of its kind (a field the schema
    /// does not name fails here rather than leave the document unlike its schema).
    func export(at now: Timestamp) throws -> Components.Schemas.MemberExport {
        let decoder = JSONDecoder()
        func all<T: Decodable>(_ kind: EntityKey.Kind, as type: T.Type) throws -> [T] {
            try entities.filter { $0.key.kind == kind }.sorted { $0.key < $1.key }.map {
                try decoder.decode(T.self, from: try $0.payloadJSON())
            }
        }
        guard let member = try all(.member, as: Components.Schemas.MemberEntity.self).first else {
            throw APIFailure(.notFound, "the member has no record")
        }
        var movements = try all(.ledgerEntry, as: Components.Schemas.LedgerEntryEntity.self)
        movements.sort { ($0.at, $0.id) < ($1.at, $1.id) }
        var consents = try all(.consentChange, as: Components.Schemas.ConsentChangeEntity.self)
        consents.sort { ($0.at, $0.id) < ($1.at, $1.id) }
        let owed = entities.lazy.compactMap { if case .account(let account) = $0 { account.owed } else { nil } }.first
        return .init(
            format: .loyaltyMemberExport, version: ._1, exportedAt: now.wire, member: member,
            account: .init(email: account.email, signInBlocked: account.signInBlocked),
            tier: try all(.tier, as: Components.Schemas.TierEntity.self).first,
            profile: try all(.profileField, as: Components.Schemas.ProfileFieldEntity.self), consents: consents,
            cards: try all(.card, as: Components.Schemas.CardEntity.self),
            lots: try all(.lot, as: Components.Schemas.LotEntity.self), movements: movements, pointsOwed: owed ?? 0,
            vouchers: try all(.voucher, as: Components.Schemas.VoucherEntity.self),
            receiptClaims: try all(.receiptClaim, as: Components.Schemas.ReceiptClaimEntity.self),
            surveyResponses: try all(.surveyResponse, as: Components.Schemas.SurveyResponseEntity.self),
            offers: try all(.memberOffer, as: Components.Schemas.MemberOfferEntity.self),
            allowances: try all(.allowance, as: Components.Schemas.AllowanceEntity.self),
            conflicts: try all(.conflict, as: Components.Schemas.ConflictEntity.self),
            tillTransactions: tillTransactions.map {
                .init(
                    id: $0.id.rawValue, kind: .init(rawValue: $0.kind.rawValue)!, receiptCode: $0.receiptCode,
                    shop: $0.shop, categories: $0.categories)
            },
            devices: devices.map {
                .init(
                    id: $0.id.rawValue, name: $0.name, createdAt: $0.createdAt.wire, lastSeenAt: $0.lastSeenAt?.wire,
                    revokedAt: $0.revokedAt?.wire)
            },
            analysis: analysis?.wire(of: MemberID(member.id)))
    }
}

extension APIHandler {
    func adminBlockMember(
        _ input: Operations.AdminBlockMember.Input
    ) async throws -> Operations.AdminBlockMember.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        try await service.blockMember(MemberID(input.path.memberID), reason: body.reason)
        return .noContent(.init())
    }

    func adminUnblockMember(
        _ input: Operations.AdminUnblockMember.Input
    ) async throws -> Operations.AdminUnblockMember.Output {
        try await service.unblockMember(MemberID(input.path.memberID))
        return .noContent(.init())
    }
}

extension APIHandler {
    func adminEraseMember(
        _ input: Operations.AdminEraseMember.Input
    ) async throws -> Operations.AdminEraseMember.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let report = try await service.eraseMember(MemberID(input.path.memberID), reason: body.reason)
        return .ok(
            .init(body: .json(.init(pointsForfeited: report.pointsForfeited, devicesRevoked: report.devicesRevoked))))
    }
}
