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
        var seen = Set<String>()
        var transactions: [TransactionRecord] = []
        for case .ledgerEntry(let entry) in entities.sorted(by: { $0.sortTime < $1.sortTime }) {
            guard let id = Timeline.tillTransaction(of: entry), seen.insert(id).inserted,
                let record = try await storage.transaction(TransactionID(id))
            else { continue }
            transactions.append(record)
        }
        logger.notice("member data exported", metadata: ["member": "\(member)"])
        return MemberData(
            entities: entities, account: overview.account, devices: overview.devices,
            analysis: try await memberAnalysis(member), tillTransactions: transactions)
    }
}

extension Entity {
    /// When a movement happened (for ordering), else the earliest time.
    fileprivate var sortTime: Timestamp {
        if case .ledgerEntry(let entry) = self { return entry.at }
        return Timestamp(millisecondsSince1970: 0)
    }
}
