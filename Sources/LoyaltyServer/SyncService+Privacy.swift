internal import Foundation
internal import Logging
internal import LoyaltyAnalysis
public import LoyaltyCore

/// What the programme holds about one member, gathered for an export (docs/privacy.md).
public struct MemberData: Sendable {
    /// The member's own entities (not the programme-wide ones), every kind, as the feed has them.
    public var entities: [Entity]
    public var account: AccountRecord
    public var devices: [DeviceRecord]
    /// The segment job's analysis, if the member was analysed.
    public var analysis: MemberAnalysis?
    /// The till's transactions on the member's account, oldest first.
    public var tillTransactions: [TransactionRecord]
}

extension SyncService {
    /// Everything the programme holds about a member (GDPR Art. 15 and 20): the member's entities (profile, consent
    /// history, cards, lots and movements, vouchers, receipts, survey answers, offers, allowances, conflicts), the
    /// account, the devices, the analysis and the till's transactions. 404 for a member that does not exist.
    public func memberData(of member: MemberID) async throws -> MemberData {
        let overview = try await overview(of: member)
        let entities = try await memberEntities(of: member)
        // Oldest first: by the time of the first movement each transaction caused.
        var first: [String: Timestamp] = [:]
        for case .ledgerEntry(let entry) in entities {
            if let id = Timeline.tillTransaction(of: entry) { first[id] = min(first[id] ?? entry.at, entry.at) }
        }
        let transactions = try await tillTransactions(in: entities).sorted {
            (first[$0.key] ?? Timestamp(millisecondsSince1970: 0), $0.key)
                < (first[$1.key] ?? Timestamp(millisecondsSince1970: 0), $1.key)
        }.map(\.value)
        logger.notice("member data exported", metadata: ["member": "\(member)"])
        return MemberData(
            entities: entities, account: overview.account, devices: overview.devices,
            analysis: try await memberAnalysis(member), tillTransactions: transactions)
    }
}

extension SyncService {
    /// Blocks a member (docs/privacy.md, "Blocking"): in one unit of work, the member's status becomes `blocked`
    /// with the reason (shown on the member's devices), and the points reserved for their devices return to the
    /// balance. Points actions are refused from then on, on every device and at the till; consents can still be
    /// withdrawn and the profile corrected. 404 for no such member, 409 for an erased one.
    public func blockMember(_ member: MemberID, reason text: String) async throws {
        let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.checkText(reason, "reason", maximum: 500)
        _ = try await overview(of: member)  // 404 for a member that does not exist
        try await storage.withMember(MemberWorkRequest(memberID: member, now: clock.now())) { work in
            do {
                work.write(try work.state.block(reason: reason))
            } catch let error as LoyaltyError {
                throw APIFailure(.conflict, error.message)
            }
        }
        // The reason may name the member's circumstances: it stays in the store, not in the log.
        logger.notice("member blocked by the operator", metadata: ["member": "\(member)"])
    }

    /// Lifts a member's block; a member who is not blocked is left as they are.
    public func unblockMember(_ member: MemberID) async throws {
        _ = try await overview(of: member)
        try await storage.withMember(MemberWorkRequest(memberID: member, now: clock.now())) { work in
            work.write(work.state.unblock())
        }
        logger.notice("member unblocked by the operator", metadata: ["member": "\(member)"])
    }
}

/// What an erasure did.
public struct ErasureReport: Sendable, Hashable {
    /// Points forfeited (0 for a member erased before).
    public var pointsForfeited: Int
    /// Devices signed out.
    public var devicesRevoked: Int
}

extension SyncService {
    /// Erases a member at the service desk (GDPR Art. 17; docs/privacy.md, "Erasure"), in one unit of work under
    /// the member's lock and so in one transaction: the member's state (``MemberState/erase(at:)``: status
    /// `erased`, profile values, answers and conflict values removed, cards blocked, points forfeited), the account
    /// (e-mail replaced, password hash removed, sign-in blocked, device names removed) and every device revoked; each
    /// device wipes itself at its next contact. From then on every action of the member and of the till is refused.
    /// Idempotent: erasing again changes nothing.
    public func eraseMember(_ member: MemberID, reason text: String) async throws -> ErasureReport {
        let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.checkText(reason, "reason", maximum: 500)
        let signedIn = try await overview(of: member).devices.count { $0.revokedAt == nil }  // 404 for no member
        let forfeited = try await storage.withMember(MemberWorkRequest(memberID: member, now: clock.now())) { work in
            let changes = work.state.erase(at: work.now)
            work.write(changes)
            work.eraseAccount()
            return changes.reduce(0) { sum, entity in
                if case .ledgerEntry(let entry) = entity, entry.kind == .forfeit || entry.kind == .payout {
                    return sum - entry.points
                }
                return sum
            }
        }
        // The reason may name the member's circumstances: not in the log.
        logger.notice(
            "member erased by the operator",
            metadata: ["member": "\(member)", "forfeited": "\(forfeited)", "devices": "\(signedIn)"])
        return ErasureReport(pointsForfeited: forfeited, devicesRevoked: signedIn)
    }
}
