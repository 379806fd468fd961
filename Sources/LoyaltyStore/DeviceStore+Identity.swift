internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import Synchronization

// Who the device is, its condition, and where syncing stands.
extension DeviceStore {

    /// The device's identity, once signed in, with its tokens from the secret store.
    public func identity() throws -> DeviceIdentity? {
        guard var identity = try pool.read({ db in try Self.identity(db) }) else { return nil }
        // A store written before the secret store kept the tokens in its row: they are used as they are.
        if identity.accessToken.isEmpty || identity.refreshToken.isEmpty {
            guard let kept = try secrets.read() else {
                throw LoyaltyError(.unusableStore, "this device's tokens are gone: sign in again")
            }
            identity.accessToken = kept.accessToken
            identity.refreshToken = kept.refreshToken
        }
        return identity
    }

    /// Stores a new session (enrolment, sign-in, refresh) and marks the device ready: the tokens in the secret
    /// store, the rest of the identity in the database (its tokens left empty).
    public func saveIdentity(_ identity: DeviceIdentity) throws {
        try secrets.write(DeviceSecrets(accessToken: identity.accessToken, refreshToken: identity.refreshToken))
        var stored = identity
        stored.accessToken = ""
        stored.refreshToken = ""
        try write { db in
            try db.execute(
                sql: "UPDATE device SET identity = ?, condition = 'ready', last_error = NULL",
                arguments: [try JSONEncoder().encode(stored)])
        }
    }

    /// Marks why the device cannot sync, keeping data and outbox.
    public func setCondition(_ condition: DeviceCondition, error: String?) throws {
        try write { db in
            try db.execute(
                sql: "UPDATE device SET condition = ?, last_error = ?", arguments: [condition.rawValue, error])
        }
    }

    /// Records the outcome of a sync attempt.
    public func recordAttempt(at time: Timestamp, error: String?) throws {
        try write { db in
            if let error {
                try db.execute(sql: "UPDATE device SET last_error = ?", arguments: [error])
            } else {
                try db.execute(
                    sql: "UPDATE device SET last_error = NULL, last_sync_at = ?",
                    arguments: [time.millisecondsSince1970])
            }
        }
    }

    /// Folds in what a server answer says about time: its clock (for the offset) and its stamp (causality).
    ///
    /// `measuresOffset` false folds the stamp in but keeps the offset measured before: for an answer that waited
    /// while the device was busy (a page asked for ahead), whose send and receive times bracket the server's
    /// clock loosely.
    public func observeServer(
        time: Timestamp, stamp: HLCTimestamp, sent: Timestamp, received: Timestamp, measuresOffset: Bool = true
    ) throws {
        let measured = ClockOffset(sent: sent, received: received, serverTime: time)
        try write { db in
            var clock = try Self.hlc(db)
            let offset =
                measuresOffset
                ? measured.offset
                : TimeSpan.milliseconds(
                    try Int64.fetchOne(db, sql: "SELECT clock_offset FROM device WHERE id = 1") ?? 0)
            // A stamp the server vouches for is folded in even if this clock is far behind (it is corrected).
            _ = try? clock.receive(stamp, wall: received.adding(offset))
            if measuresOffset {
                try db.execute(
                    sql: "UPDATE device SET hlc = ?, clock_offset = ?, clock_uncertainty = ?",
                    arguments: [
                        Int64(bitPattern: clock.last.encoded), measured.offset.milliseconds,
                        measured.uncertainty.milliseconds,
                    ])
            } else {
                try db.execute(sql: "UPDATE device SET hlc = ?", arguments: [Int64(bitPattern: clock.last.encoded)])
            }
        }
    }

    /// Where syncing stands.
    public func status() throws -> SyncStatus {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT * FROM device WHERE id = 1")!
            let pending = try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox") ?? 0
            let unread = try Int.fetchOne(db, sql: "SELECT count(*) FROM notices WHERE read = 0") ?? 0
            let oldest = try Int64.fetchOne(db, sql: "SELECT min(created_at) FROM outbox")
            return SyncStatus(
                condition: DeviceCondition(rawValue: row["condition"]) ?? .signedOut, pending: pending,
                unreadNotices: unread,
                lastSyncAt: (row["last_sync_at"] as Int64?).map { Timestamp(millisecondsSince1970: $0) },
                lastError: row["last_error"], oldestPendingAt: oldest.map { Timestamp(millisecondsSince1970: $0) },
                cursor: LoyaltyCore.Cursor(version: UInt64(row["cursor"] as Int64)),
                clockOffset: ClockOffset(
                    offset: .milliseconds(row["clock_offset"]), uncertainty: .milliseconds(row["clock_uncertainty"])))
        }
    }

    /// The device clock corrected by the measured offset.
    public func correctedTime(_ deviceTime: Timestamp) throws -> Timestamp {
        let offset = try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT clock_offset FROM device WHERE id = 1") ?? 0
        }
        return deviceTime.adding(.milliseconds(offset))
    }

}
