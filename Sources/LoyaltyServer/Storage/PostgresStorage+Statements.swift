internal import Foundation
internal import LoyaltyCore
internal import NIOCore
internal import PostgresNIO

// The statements of the push path, prepared once per connection (PostgreSQL parses and plans them once, not on
// every push).
extension PostgresStorage {
    /// Waits for the member's lock and holds it until the transaction ends.
    struct LockMember: PostgresPreparedStatement {
        static let sql = "SELECT pg_advisory_xact_lock($1, hashtext($2))::text"
        typealias Row = ()
        let member: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(PostgresStorage.memberLockSpace)
            bindings.append(member)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    /// Waits for the member's lock (held until the transaction ends), then reads the newest versions of the member's
    /// entities and of the catalogue, and the device's row (NULLs if none): migration v2's function, one round trip.
    struct UnitHead: PostgresPreparedStatement {
        static let sql = "SELECT * FROM loyalty_unit_head($1, $2)"
        typealias Row = (StateCache.Versions, DeviceRecord?)
        let member: String
        let device: String?

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(member)
            bindings.append(device)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            let (member, catalogue, id, memberID, name, created, revoked, reason, sequence) = try row.decode(
                (Int64, Int64, String?, String?, String?, Int64?, Int64?, String?, Int64?).self)
            let versions = StateCache.Versions(member: member, catalogue: catalogue)
            guard let id, let memberID, let name, let created, let sequence else { return (versions, nil) }
            let columns = row.makeRandomAccess()
            let time = { (value: Int64?) in value.map { Timestamp(millisecondsSince1970: $0) } }
            return (
                versions,
                DeviceRecord(
                    id: DeviceID(id), memberID: MemberID(memberID), name: name,
                    createdAt: Timestamp(millisecondsSince1970: created), revokedAt: time(revoked),
                    lastSequence: UInt64(sequence), lastActedAt: time(try columns[9].decode(Int64?.self)),
                    lastSeenAt: time(try columns[10].decode(Int64?.self)),
                    lastPulledAt: time(try columns[11].decode(Int64?.self)),
                    refreshHash: [UInt8](try columns[12].decode(Data.self)),
                    previousRefreshHash: try columns[13].decode(Data?.self).map { [UInt8]($0) },
                    rotatedAt: time(try columns[14].decode(Int64?.self)),
                    supersededRefreshHashes: [UInt8](try columns[15].decode(Data?.self) ?? Data()).chunked(32),
                    refreshRetries: Int(try columns[16].decode(Int32.self)),
                    revokedReason: reason.flatMap { RevocationReason(rawValue: $0) })
            )
        }
    }

    /// A device's unit of work's writes: the member's entities (each with the next feed version, in order), the
    /// device's results and progress, and (if `recordsDue`) the member's job times; the newest version written.
    struct DeviceUnitWrites: PostgresPreparedStatement {
        static let sql = """
            WITH e AS (
                INSERT INTO entities (member_id, kind, id, version, body, updated_at)
                SELECT $1, k, i, nextval('feed_version'), b, $2
                FROM unnest($3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY AS t(k, i, b, n)
                ORDER BY n
                ON CONFLICT (member_id, kind, id) DO UPDATE SET
                    version = excluded.version, body = excluded.body, updated_at = excluded.updated_at
                RETURNING version),
            r AS (
                INSERT INTO mutation_results (member_id, device_id, sequence, result, processed_at)
                SELECT $1, $6, s, x, $2 FROM unnest($7::bigint[], $8::bytea[]) AS t(s, x)),
            d AS (
                UPDATE devices SET last_sequence = $9, last_acted_at = $10, last_seen_at = $2
                WHERE member_id = $1 AND id = $6),
            a AS (
                UPDATE accounts SET unlock_due = $11, expire_due = $12 WHERE member_id = $1 AND $13)
            SELECT coalesce(max(version), 0) FROM e
            """
        typealias Row = Int64
        let member: String
        let now: Int64
        let rows: EntityRows
        let device: String
        let sequences: [Int64]
        let results: [ByteBuffer]
        let lastSequence: Int64
        let lastActedAt: Int64?
        let due: JobsDue?

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 13)
            bindings.append(member)
            bindings.append(now)
            bindings.append(rows.kinds)
            bindings.append(rows.ids)
            bindings.append(rows.bodies)
            bindings.append(device)
            bindings.append(sequences)
            bindings.append(results)
            bindings.append(lastSequence)
            bindings.append(lastActedAt)
            bindings.append(due?.unlock?.millisecondsSince1970)
            bindings.append(due?.expire?.millisecondsSince1970)
            bindings.append(due != nil)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// A page of a member's feed (migration v2's function): a first row of heads, then the changes.
    struct FeedStatement: PostgresPreparedStatement {
        static let sql = "SELECT * FROM loyalty_feed($1, $2, $3, $4)"
        typealias Row = (kind: String?, id: String?, version: Int64?, body: Data?, horizon: Int64?)
        let member: String
        let after: Int64
        let limit: Int
        let wait: Bool

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(member)
            bindings.append(after)
            bindings.append(Int32(clamping: limit))
            bindings.append(wait)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            let (kind, id, version, body, horizon) = try row.decode((String?, String?, Int64?, Data?, Int64?).self)
            return (kind, id, version, body, horizon)
        }
    }
}
