internal import Foundation
internal import GRDB
internal import LoyaltyCore

// Rows of the SQLite schema to records and back.
extension SQLiteStorage {
    static func insertDevice(_ db: Database, _ device: DeviceRecord) throws {
        try mapConstraint("device \(device.id)") {
            try db.execute(
                sql: """
                    INSERT INTO devices (id, member_id, name, created_at, refresh_hash) VALUES (?, ?, ?, ?, ?)
                    """,
                arguments: [
                    device.id.rawValue, device.memberID.rawValue, device.name, device.createdAt.millisecondsSince1970,
                    Data(device.refreshHash),
                ])
        }
    }

    static func fetchDevice(_ db: Database, id: DeviceID) throws -> DeviceRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM devices WHERE id = ?"), arguments: [id.rawValue])
            .map(device)
    }

    static func fetchReceipt(_ db: Database, code: String) throws -> (Receipt, LotID?)? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM receipts WHERE code = ?"), arguments: [code]).map {
            row in
            let receipt = Receipt(
                code: row["code"], amount: Money(minorUnits: row["amount"]), shop: row["shop"],
                purchasedAt: Timestamp(millisecondsSince1970: row["purchased_at"]),
                claimedBy: (row["claimed_by"] as String?).map { MemberID($0) })
            return (receipt, (row["lot_id"] as String?).map { LotID($0) })
        }
    }

    static func account(_ row: Row) -> AccountRecord {
        AccountRecord(
            memberID: MemberID(row["member_id"]), email: row["email"],
            passwordHash: [UInt8](row["password_hash"] as Data), salt: [UInt8](row["salt"] as Data),
            passwordParameters: (row["password_params"] as String?).flatMap(ScryptParameters.init) ?? .legacy,
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]), signInBlocked: row["sign_in_blocked"])
    }

    static func device(_ row: Row) -> DeviceRecord {
        func time(_ column: String) -> Timestamp? {
            (row[column] as Int64?).map { Timestamp(millisecondsSince1970: $0) }
        }
        return DeviceRecord(
            id: DeviceID(row["id"]), memberID: MemberID(row["member_id"]), name: row["name"],
            createdAt: Timestamp(millisecondsSince1970: row["created_at"]), revokedAt: time("revoked_at"),
            lastSequence: UInt64(row["last_sequence"] as Int64), lastActedAt: time("last_acted_at"),
            lastSeenAt: time("last_seen_at"), lastPulledAt: time("last_pulled_at"),
            refreshHash: [UInt8](row["refresh_hash"] as Data),
            previousRefreshHash: (row["previous_refresh_hash"] as Data?).map { [UInt8]($0) },
            rotatedAt: time("rotated_at"),
            supersededRefreshHashes: ((row["superseded_refresh"] as Data?).map { [UInt8]($0) } ?? []).chunked(32),
            refreshRetries: row["refresh_retries"],
            revokedReason: (row["revoked_reason"] as String?).flatMap {
                RevocationReason(rawValue: $0)
            })
    }

    static func mapConstraint(_ what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw LoyaltyError(.duplicate, "\(what) exists already", cause: error)
        }
    }
}

extension Array where Element == UInt8 {
    /// The array cut into pieces of `size` bytes (the last one shorter if it does not divide).
    func chunked(_ size: Int) -> [[UInt8]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
