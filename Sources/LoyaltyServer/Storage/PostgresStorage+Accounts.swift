internal import Foundation
internal import Logging
public import LoyaltyCore
internal import NIOCore
internal import PostgresNIO

// Accounts, devices and their refresh tokens; cards, receipts and till transactions.
extension PostgresStorage {
    public func createMember(
        _ account: AccountRecord, device: DeviceRecord, card: CardNumber, entities: [Entity], now: Timestamp
    ) async throws {
        try await transaction { connection in
            try await Self.lockMember(account.memberID, connection, logger: self.logger)
            try await Self.unique("e-mail \(account.email)") {
                try await connection.query(
                    """
                    INSERT INTO accounts (member_id, email, password_hash, salt, password_params, created_at)
                    VALUES (\(account.memberID.rawValue), \(account.email), \(Data(account.passwordHash)),
                        \(Data(account.salt)), \(account.passwordParameters.description),
                        \(account.createdAt.millisecondsSince1970))
                    """, logger: self.logger)
            }
            try await Self.insertDevice(device, connection: connection, logger: self.logger)
            try await Self.unique("card \(card.digits)") {
                try await connection.query(
                    "INSERT INTO cards (number, member_id) VALUES (\(card.digits), \(account.memberID.rawValue))",
                    logger: self.logger)
            }
            try await self.writeMemberEntities(entities, member: account.memberID, now: now, connection: connection)
        }
    }

    public func account(email: String) async throws -> AccountRecord? {
        try await leased { connection in
            try await Self.account(
                connection.query(
                    "SELECT \(unescaped: Self.accountColumns) FROM accounts WHERE lower(email) = lower(\(email))",
                    logger: self.logger))
        }
    }

    public func account(member: MemberID) async throws -> AccountRecord? {
        try await leased { connection in
            try await Self.account(
                connection.query(
                    "SELECT \(unescaped: Self.accountColumns) FROM accounts WHERE member_id = \(member.rawValue)",
                    logger: self.logger))
        }
    }

    static let accountColumns = "member_id, email, password_hash, salt, password_params, created_at, sign_in_blocked"

    static func account(_ rows: PostgresRowSequence) async throws -> AccountRecord? {
        for try await (member, email, hash, salt, parameters, created, blocked) in rows.decode(
            (String, String, Data, Data, String?, Int64, Bool).self)
        {
            return AccountRecord(
                memberID: MemberID(member), email: email, passwordHash: [UInt8](hash), salt: [UInt8](salt),
                passwordParameters: parameters.flatMap(ScryptParameters.init) ?? .legacy,
                createdAt: Timestamp(millisecondsSince1970: created), signInBlocked: blocked)
        }
        return nil
    }

    public func updatePassword(
        member: MemberID, hash: [UInt8], salt: [UInt8], parameters: ScryptParameters
    ) async throws {
        _ = try await leased { connection in
            try await connection.query(
                """
                UPDATE accounts SET password_hash = \(Data(hash)), salt = \(Data(salt)),
                    password_params = \(parameters.description)
                WHERE member_id = \(member.rawValue)
                """, logger: self.logger)
        }
    }

    public func setSignInBlocked(member: MemberID, blocked: Bool) async throws -> Bool {
        try await leased { connection in
            try await connection.query(
                """
                UPDATE accounts SET sign_in_blocked = \(blocked) WHERE member_id = \(member.rawValue)
                RETURNING member_id
                """, logger: self.logger
            ).collect().count == 1
        }
    }

    public func revokeDevices(
        member: MemberID, except kept: DeviceID?, reason: RevocationReason, at time: Timestamp
    ) async throws -> [DeviceID] {
        try await leased { connection in
            var revoked: [DeviceID] = []
            for try await id in try await connection.query(
                """
                UPDATE devices SET revoked_at = \(time.millisecondsSince1970), revoked_reason = \(reason.rawValue)
                WHERE member_id = \(member.rawValue) AND revoked_at IS NULL AND id IS DISTINCT FROM \(kept?.rawValue)
                RETURNING id
                """, logger: self.logger
            ).decode(String.self) {
                revoked.append(DeviceID(id))
            }
            return revoked
        }
    }

    public func memberIDs(after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await leased { connection in
            var ids: [MemberID] = []
            for try await id in try await connection.query(
                """
                SELECT member_id FROM accounts WHERE member_id > \(after?.rawValue ?? "")
                ORDER BY member_id LIMIT \(limit)
                """, logger: self.logger
            ).decode(String.self) {
                ids.append(MemberID(id))
            }
            return ids
        }
    }

    public func membersDue(_ job: Job, by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID] {
        let column = job == .unlock ? "unlock_due" : "expire_due"
        return try await leased { connection in
            var ids: [MemberID] = []
            for try await id in try await connection.query(
                """
                SELECT member_id FROM accounts
                WHERE \(unescaped: column) <= \(time.millisecondsSince1970) AND member_id > \(after?.rawValue ?? "")
                ORDER BY member_id LIMIT \(limit)
                """, logger: self.logger
            ).decode(String.self) {
                ids.append(MemberID(id))
            }
            return ids
        }
    }

    public func device(_ id: DeviceID) async throws -> DeviceRecord? {
        try await leased { connection in try await Self.fetchDevice(id, connection: connection, logger: self.logger) }
    }

    public func devices(member: MemberID) async throws -> [DeviceRecord] {
        try await leased { connection in
            try await Self.devices(
                connection.query(
                    """
                    SELECT \(unescaped: Self.deviceColumns) FROM devices WHERE member_id = \(member.rawValue)
                    ORDER BY created_at, id
                    """, logger: self.logger))
        }
    }

    public func insertDevice(_ device: DeviceRecord) async throws {
        try await leased { connection in
            try await Self.insertDevice(device, connection: connection, logger: self.logger)
        }
    }

    public func rotateRefreshToken(
        device id: DeviceID, presented: [UInt8], next: [UInt8], now: Timestamp, policy: RefreshPolicy
    ) async throws -> RefreshRotation {
        try await transaction { connection in
            // The row stays locked until commit: two refreshes of one device on two instances are one after the other.
            guard
                let device = try await Self.devices(
                    connection.query(
                        "SELECT \(unescaped: Self.deviceColumns) FROM devices WHERE id = \(id.rawValue) FOR UPDATE",
                        logger: self.logger)
                ).first
            else { return .unknown }
            let (outcome, updated) = RefreshFamily.decide(
                device, presented: presented, next: next, now: now, policy: policy)
            guard updated != device else { return outcome }
            try await connection.query(
                """
                UPDATE devices SET refresh_hash = \(Data(updated.refreshHash)),
                    previous_refresh_hash = \(updated.previousRefreshHash.map { Data($0) }),
                    rotated_at = \(updated.rotatedAt?.millisecondsSince1970),
                    superseded_refresh = \(Data(updated.supersededRefreshHashes.joined())),
                    refresh_retries = \(Int32(updated.refreshRetries)),
                    revoked_at = \(updated.revokedAt?.millisecondsSince1970),
                    revoked_reason = \(updated.revokedReason?.rawValue)
                WHERE id = \(id.rawValue)
                """, logger: self.logger)
            return outcome
        }
    }

    public func revokeDevice(_ id: DeviceID, at time: Timestamp) async throws -> Bool {
        try await leased { connection in
            try await connection.query(
                """
                UPDATE devices SET revoked_at = coalesce(revoked_at, \(time.millisecondsSince1970)),
                    revoked_reason = coalesce(revoked_reason, 'signed_out')
                WHERE id = \(id.rawValue) RETURNING id
                """, logger: self.logger
            ).collect().count == 1
        }
    }

    public func markPulled(_ id: DeviceID, at time: Timestamp) async throws {
        try await leased { connection in
            try await connection.query(
                """
                UPDATE devices SET last_pulled_at = greatest(last_pulled_at, \(time.millisecondsSince1970))
                WHERE id = \(id.rawValue)
                """, logger: self.logger)
        }
    }

    public func touchDevice(_ id: DeviceID, at time: Timestamp) async throws {
        try await leased { connection in
            try await connection.query(
                "UPDATE devices SET last_seen_at = \(time.millisecondsSince1970) WHERE id = \(id.rawValue)",
                logger: self.logger)
        }
    }

    // MARK: Cards, receipts, transactions

    public func cardOwner(_ number: CardNumber) async throws -> MemberID? {
        try await leased { connection in
            for try await member in try await connection.query(
                "SELECT member_id FROM cards WHERE number = \(number.digits)", logger: self.logger
            ).decode(String.self) {
                return MemberID(member)
            }
            return nil
        }
    }

    public func insertReceipt(_ receipt: Receipt) async throws {
        try await leased { connection in
            try await Self.unique("receipt \(receipt.code)") {
                try await connection.query(
                    """
                    INSERT INTO receipts (code, amount, shop, purchased_at)
                    VALUES (\(receipt.code), \(receipt.amount.minorUnits), \(receipt.shop),
                        \(receipt.purchasedAt.millisecondsSince1970))
                    """, logger: self.logger)
            }
        }
    }

    public func receipt(code: String) async throws -> (Receipt, LotID?)? {
        try await leased { connection in
            try await Self.fetchReceipts([code], connection: connection, logger: self.logger).first
        }
    }

    public func transaction(_ id: TransactionID) async throws -> TransactionRecord? {
        try await leased { connection in
            for try await (id, kind, member, lot, code, shop, categories) in try await connection.query(
                """
                SELECT id, kind, member_id, lot_id, receipt_code, shop, categories FROM transactions
                WHERE id = \(id.rawValue)
                """,
                logger: self.logger
            ).decode((String, String, String, String?, String?, String?, String?).self) {
                return TransactionRecord(
                    id: TransactionID(id), kind: TransactionRecord.Kind(rawValue: kind) ?? .purchase,
                    memberID: MemberID(member), lot: lot.map { LotID($0) }, receiptCode: code, shop: shop,
                    categories: TransactionRecord.categories(categories))
            }
            return nil
        }
    }

    // MARK: Rows

    static func fetchReceipts(
        _ codes: [String], connection: PostgresConnection, logger: Logger
    ) async throws -> [(Receipt, LotID?)] {
        var receipts: [(Receipt, LotID?)] = []
        for try await (code, amount, shop, purchased, claimedBy, lot) in try await connection.query(
            """
            SELECT code, amount, shop, purchased_at, claimed_by, lot_id FROM receipts WHERE code = ANY(\(codes))
            """, logger: logger
        ).decode((String, Int64, String, Int64, String?, String?).self) {
            let receipt = Receipt(
                code: code, amount: Money(minorUnits: amount), shop: shop,
                purchasedAt: Timestamp(millisecondsSince1970: purchased), claimedBy: claimedBy.map { MemberID($0) })
            receipts.append((receipt, lot.map { LotID($0) }))
        }
        return receipts
    }

    static func insertDevice(_ device: DeviceRecord, connection: PostgresConnection, logger: Logger) async throws {
        try await unique("device \(device.id)") {
            try await connection.query(
                """
                INSERT INTO devices (id, member_id, name, created_at, refresh_hash)
                VALUES (\(device.id.rawValue), \(device.memberID.rawValue), \(device.name),
                    \(device.createdAt.millisecondsSince1970), \(Data(device.refreshHash)))
                """, logger: logger)
        }
    }

    static let deviceColumns = """
        id, member_id, name, created_at, revoked_at, revoked_reason, last_sequence, last_acted_at, last_seen_at,
        last_pulled_at, refresh_hash, previous_refresh_hash, rotated_at, superseded_refresh, refresh_retries
        """

    static func fetchDevice(
        _ id: DeviceID, connection: PostgresConnection, logger: Logger
    ) async throws
        -> DeviceRecord?
    {
        try await devices(
            connection.query(
                "SELECT \(unescaped: deviceColumns) FROM devices WHERE id = \(id.rawValue)", logger: logger)
        ).first
    }

    static func devices(_ rows: PostgresRowSequence) async throws -> [DeviceRecord] {
        var devices: [DeviceRecord] = []
        for try await row in rows {
            if let device = try device(row.makeRandomAccess(), from: 0) { devices.append(device) }
        }
        return devices
    }

    /// The device in the columns ``deviceColumns`` names from `first` on, or nil where they are NULL (no device).
    static func device(_ columns: PostgresRandomAccessRow, from first: Int) throws -> DeviceRecord? {
        guard let id = try columns[first].decode(String?.self) else { return nil }
        let time = { (index: Int) throws -> Timestamp? in
            try columns[first + index].decode(Int64?.self).map { Timestamp(millisecondsSince1970: $0) }
        }
        return DeviceRecord(
            id: DeviceID(id), memberID: MemberID(try columns[first + 1].decode(String.self)),
            name: try columns[first + 2].decode(String.self),
            createdAt: Timestamp(millisecondsSince1970: try columns[first + 3].decode(Int64.self)),
            revokedAt: try time(4),
            lastSequence: UInt64(try columns[first + 6].decode(Int64.self)), lastActedAt: try time(7),
            lastSeenAt: try time(8), lastPulledAt: try time(9),
            refreshHash: [UInt8](try columns[first + 10].decode(Data.self)),
            previousRefreshHash: try columns[first + 11].decode(Data?.self).map { [UInt8]($0) },
            rotatedAt: try time(12),
            supersededRefreshHashes: [UInt8](try columns[first + 13].decode(Data?.self) ?? Data()).chunked(32),
            refreshRetries: Int(try columns[first + 14].decode(Int32.self)),
            revokedReason: try columns[first + 5].decode(String?.self).flatMap { RevocationReason(rawValue: $0) })
    }
}
