internal import Foundation
internal import LoyaltyCore
internal import NIOCore
internal import PostgresNIO

// The statements of the push path, prepared once per connection (PostgreSQL parses and plans them once, not on
// every push).
extension PostgresStorage {
    /// Waits for the member's lock and holds it until the transaction ends.
    struct LockMember: PostgresPreparedStatement {
        /// The statement's name on a connection (the default derives it from the type's name on every use).
        static let name = "loyalty_lock_member"
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
        static let name = "loyalty_unit_head"
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
            let columns = row.makeRandomAccess()
            let versions = StateCache.Versions(
                member: try columns[0].decode(Int64.self), catalogue: try columns[1].decode(Int64.self))
            return (versions, try PostgresStorage.device(columns, from: 2))
        }
    }

    /// A device's unit of work's writes: the member's entities (each with the next feed version, in order), the
    /// device's results and progress, and (if `recordsDue`) the member's job times; the newest version written.
    struct DeviceUnitWrites: PostgresPreparedStatement {
        static let name = "loyalty_device_unit_writes"
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

    /// A page of a member's feed (migration v2's function): a first row of heads and the device's row (if one is
    /// named and it is the member's), then the changes.
    struct FeedStatement: PostgresPreparedStatement {
        static let name = "loyalty_feed_page"
        static let sql = "SELECT * FROM loyalty_feed($1, $2, $3, $4, $5)"
        enum Row {
            case heads(horizon: Int64, latest: Int64, device: DeviceRecord?)
            case change(StoredChange)
            /// A kind this version does not know.
            case unknown
        }
        let member: String
        let device: String?
        let after: Int64
        let limit: Int
        let wait: Bool

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(member)
            bindings.append(device)
            bindings.append(after)
            bindings.append(Int32(clamping: limit))
            bindings.append(wait)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            let columns = row.makeRandomAccess()
            guard let kind = try columns[0].decode(String?.self) else {
                return .heads(
                    horizon: try columns[4].decode(Int64.self), latest: try columns[2].decode(Int64.self),
                    device: try PostgresStorage.device(columns, from: 5))
            }
            guard let known = EntityKey.Kind(rawValue: kind) else { return .unknown }
            return .change(
                StoredChange(
                    version: UInt64(try columns[2].decode(Int64.self)),
                    key: EntityKey(known, try columns[1].decode(String.self)), body: try columns[3].decode(Data?.self)))
        }
    }
}
