internal import Foundation
internal import GRDB
public import LoyaltyCore

// Accounts, devices and their refresh tokens.
extension SQLiteStorage {
    public func createMember(
        _ account: AccountRecord, device: DeviceRecord, card: CardNumber, entities: [Entity], now: Timestamp
    ) async throws {
        let written = try await pool.write { db in
            try Self.mapConstraint("e-mail \(account.email)") {
                try db.execute(
                    sql:
                        """
                        INSERT INTO accounts (
                            member_id, email, password_hash, salt, password_params, created_at, unlock_due, expire_due)
                        VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)
                        """,
                    arguments: [
                        account.memberID.rawValue, account.email, Data(account.passwordHash), Data(account.salt),
                        account.passwordParameters.description, account.createdAt.millisecondsSince1970,
                    ])
            }
            try Self.insertDevice(db, device)
            try Self.mapConstraint("card \(card.digits)") {
                try db.execute(
                    sql: "INSERT INTO cards (number, member_id) VALUES (?, ?)",
                    arguments: [card.digits, account.memberID.rawValue])
            }
            return try Self.writeEntities(entities, member: account.memberID, now: now, db: db)
        }
        written.tell(cache, member: account.memberID)
        cache.forget(devices: [device.id])
    }

    public func account(email: String) async throws -> AccountRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE email = ?", arguments: [email]).map(Self.account)
        }
    }

    public func account(member: MemberID) async throws -> AccountRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM accounts WHERE member_id = ?", arguments: [member.rawValue])
                .map(Self.account)
        }
    }

    public func updatePassword(
        member: MemberID, hash: [UInt8], salt: [UInt8], parameters: ScryptParameters
    ) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE accounts SET password_hash = ?, salt = ?, password_params = ? WHERE member_id = ?",
                arguments: [Data(hash), Data(salt), parameters.description, member.rawValue])
        }
    }

    public func setSignInBlocked(member: MemberID, blocked: Bool) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE accounts SET sign_in_blocked = ? WHERE member_id = ?",
                arguments: [blocked, member.rawValue])
            return db.changesCount == 1
        }
    }

    public func revokeDevices(
        member: MemberID, except kept: DeviceID?, reason: RevocationReason, at time: Timestamp
    ) async throws -> [DeviceID] {
        let revoked = try await pool.write { db -> [DeviceID] in
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM devices WHERE member_id = ? AND revoked_at IS NULL AND id IS NOT ?",
                arguments: [member.rawValue, kept?.rawValue])
            try db.execute(
                sql: """
                    UPDATE devices SET revoked_at = ?, revoked_reason = ?
                    WHERE member_id = ? AND revoked_at IS NULL AND id IS NOT ?
                    """,
                arguments: [time.millisecondsSince1970, reason.rawValue, member.rawValue, kept?.rawValue])
            return ids.map { DeviceID($0) }
        }
        cache.forget(devices: revoked)
        return revoked
    }

    public func memberIDs(after: MemberID?, limit: Int) async throws -> [MemberID] {
        try await pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT member_id FROM accounts WHERE member_id > ? ORDER BY member_id LIMIT ?",
                arguments: [after?.rawValue ?? "", limit]
            ).map { MemberID($0) }
        }
    }

    public func membersDue(_ job: Job, by time: Timestamp, after: MemberID?, limit: Int) async throws -> [MemberID] {
        let column = job == .unlock ? "unlock_due" : "expire_due"
        return try await pool.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT member_id FROM accounts WHERE \(column) <= ? AND member_id > ? ORDER BY member_id LIMIT ?
                    """,
                arguments: [time.millisecondsSince1970, after?.rawValue ?? "", limit]
            ).map { MemberID($0) }
        }
    }

    public func device(_ id: DeviceID) async throws -> DeviceRecord? {
        if let kept = cache.device(id) { return kept }
        let ticket = cache.ticket()
        let record = try await pool.read { db in try Self.fetchDevice(db, id: id) }
        if let record { cache.keep(record, readWith: ticket) }
        return record
    }

    public func devices(member: MemberID) async throws -> [DeviceRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM devices WHERE member_id = ? ORDER BY created_at, id",
                arguments: [member.rawValue]
            ).map(Self.device)
        }
    }

    public func insertDevice(_ device: DeviceRecord) async throws {
        try await pool.write { db in try Self.insertDevice(db, device) }
        cache.forget(devices: [device.id])
    }

    public func rotateRefreshToken(
        device id: DeviceID, presented: [UInt8], next: [UInt8], now: Timestamp, policy: RefreshPolicy
    ) async throws -> RefreshRotation {
        let outcome = try await pool.write { db -> RefreshRotation in
            guard let device = try Self.fetchDevice(db, id: id) else { return .unknown }
            let (outcome, updated) = RefreshFamily.decide(
                device, presented: presented, next: next, now: now, policy: policy)
            guard updated != device else { return outcome }
            try db.execute(
                sql: """
                    UPDATE devices SET refresh_hash = ?, previous_refresh_hash = ?, rotated_at = ?,
                        superseded_refresh = ?, refresh_retries = ?, revoked_at = ?, revoked_reason = ?
                    WHERE id = ?
                    """,
                arguments: [
                    Data(updated.refreshHash), updated.previousRefreshHash.map { Data($0) },
                    updated.rotatedAt?.millisecondsSince1970, Data(updated.supersededRefreshHashes.joined()),
                    updated.refreshRetries, updated.revokedAt?.millisecondsSince1970, updated.revokedReason?.rawValue,
                    id.rawValue,
                ])
            return outcome
        }
        cache.forget(devices: [id])
        return outcome
    }

    public func revokeDevice(_ id: DeviceID, at time: Timestamp) async throws -> Bool {
        let revoked = try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE devices SET revoked_at = coalesce(revoked_at, ?),
                        revoked_reason = coalesce(revoked_reason, 'signed_out')
                    WHERE id = ?
                    """,
                arguments: [time.millisecondsSince1970, id.rawValue])
            return db.changesCount == 1
        }
        cache.forget(devices: [id])
        return revoked
    }

    public func markPulled(_ id: DeviceID, at time: Timestamp) async throws {
        try await pool.write { db in
            // The later time stays, so that two pulls told in either order leave the same row (in memory too).
            try db.cachedStatement(
                sql: "UPDATE devices SET last_pulled_at = max(coalesce(last_pulled_at, ?1), ?1) WHERE id = ?2"
            ).execute(arguments: [time.millisecondsSince1970, id.rawValue])
        }
        cache.update(device: id) { $0.lastPulledAt = max($0.lastPulledAt ?? time, time) }
    }

    public func touchDevice(_ id: DeviceID, at time: Timestamp) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE devices SET last_seen_at = ? WHERE id = ?",
                arguments: [time.millisecondsSince1970, id.rawValue])
        }
        cache.forget(devices: [id])
    }
}
