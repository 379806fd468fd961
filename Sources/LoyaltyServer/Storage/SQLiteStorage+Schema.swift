internal import Foundation
internal import GRDB
public import LoyaltyCore
internal import LoyaltySQLite

// The schema, its migrations and the programme a new store starts with.
extension SQLiteStorage {
    public func migrate() async throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: accounts, devices, feed, receipts, transactions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                    INSERT INTO meta (key, value) VALUES ('version', 0), ('horizon', 0);
                    CREATE TABLE accounts (
                        member_id TEXT PRIMARY KEY NOT NULL,
                        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
                        password_hash BLOB NOT NULL,
                        salt BLOB NOT NULL,
                        created_at INTEGER NOT NULL);
                    CREATE TABLE devices (
                        id TEXT PRIMARY KEY NOT NULL,
                        member_id TEXT NOT NULL REFERENCES accounts(member_id),
                        name TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER,
                        last_sequence INTEGER NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
                        last_acted_at INTEGER,
                        last_seen_at INTEGER,
                        last_pulled_at INTEGER,
                        refresh_hash BLOB NOT NULL,
                        previous_refresh_hash BLOB,
                        rotated_at INTEGER);
                    CREATE INDEX devices_by_member ON devices(member_id);
                    CREATE TABLE mutation_results (
                        device_id TEXT NOT NULL REFERENCES devices(id),
                        sequence INTEGER NOT NULL CHECK (sequence > 0),
                        result BLOB NOT NULL,
                        processed_at INTEGER NOT NULL,
                        PRIMARY KEY (device_id, sequence));
                    CREATE TABLE entities (
                        scope TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        id TEXT NOT NULL,
                        version INTEGER NOT NULL UNIQUE,
                        body BLOB,
                        updated_at INTEGER NOT NULL,
                        PRIMARY KEY (scope, kind, id));
                    CREATE INDEX entities_feed ON entities(scope, version);
                    CREATE TABLE cards (
                        number TEXT PRIMARY KEY NOT NULL,
                        member_id TEXT NOT NULL REFERENCES accounts(member_id));
                    CREATE TABLE receipts (
                        code TEXT PRIMARY KEY NOT NULL,
                        amount INTEGER NOT NULL CHECK (amount >= 0),
                        shop TEXT NOT NULL,
                        purchased_at INTEGER NOT NULL,
                        claimed_by TEXT REFERENCES accounts(member_id),
                        lot_id TEXT);
                    CREATE TABLE transactions (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('purchase', 'return')),
                        member_id TEXT NOT NULL REFERENCES accounts(member_id),
                        lot_id TEXT,
                        receipt_code TEXT);
                    """)
        }
        migrator.registerMigration("v2: till redemptions") { db in
            // SQLite cannot change a CHECK constraint in place: the table is rebuilt with the new kind allowed.
            try db.execute(
                sql: """
                    CREATE TABLE transactions_v2 (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('purchase', 'return', 'redemption')),
                        member_id TEXT NOT NULL REFERENCES accounts(member_id),
                        lot_id TEXT,
                        receipt_code TEXT);
                    INSERT INTO transactions_v2 SELECT id, kind, member_id, lot_id, receipt_code FROM transactions;
                    DROP TABLE transactions;
                    ALTER TABLE transactions_v2 RENAME TO transactions;
                    """)
        }
        migrator.registerMigration("v3: refresh token families") { db in
            try db.execute(
                sql: """
                    ALTER TABLE devices ADD COLUMN superseded_refresh BLOB;
                    ALTER TABLE devices ADD COLUMN refresh_retries INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE devices ADD COLUMN revoked_reason TEXT;
                    """)
        }
        migrator.registerMigration("v4: password hash parameters, sign-in blocks") { db in
            // Hashes made before have none: they were made with scrypt$14$8$1 (ScryptParameters.legacy).
            try db.execute(
                sql: """
                    ALTER TABLE accounts ADD COLUMN password_params TEXT;
                    ALTER TABLE accounts ADD COLUMN sign_in_blocked INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        migrator.registerMigration("v5: when the jobs next have work for each member") { db in
            // Existing members are due at once: the first run of each job visits them and records their times.
            try db.execute(
                sql: """
                    ALTER TABLE accounts ADD COLUMN unlock_due INTEGER DEFAULT 0;
                    ALTER TABLE accounts ADD COLUMN expire_due INTEGER DEFAULT 0;
                    CREATE INDEX accounts_unlock_due ON accounts(unlock_due) WHERE unlock_due IS NOT NULL;
                    CREATE INDEX accounts_expire_due ON accounts(expire_due) WHERE expire_due IS NOT NULL;
                    """)
        }
        migrator.registerMigration("v6: the segment job's analyses and the segments") { db in
            try db.execute(
                sql: """
                    CREATE TABLE member_analysis (
                        member_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts(member_id),
                        due_at INTEGER,
                        body BLOB NOT NULL);
                    CREATE INDEX member_analysis_due ON member_analysis(due_at) WHERE due_at IS NOT NULL;
                    CREATE TABLE segments (name TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL);
                    """)
        }
        migrator.registerMigration("v7: the programme's sums and each member's contribution to them") { db in
            // The members analysed before have no contribution yet: the next run of the segment job visits all.
            try db.execute(
                sql: """
                    ALTER TABLE member_analysis ADD COLUMN contribution BLOB;
                    CREATE TABLE programme_figures (
                        period TEXT NOT NULL, measure TEXT NOT NULL, value INTEGER NOT NULL,
                        PRIMARY KEY (period, measure)) WITHOUT ROWID;
                    INSERT OR IGNORE INTO segments (name, body) VALUES ('#full-run-due', X'7B7D');
                    """)
        }
        migrator.registerMigration("v8: the till's shop and basket categories") { db in
            try db.execute(
                sql: """
                    ALTER TABLE transactions ADD COLUMN shop TEXT;
                    ALTER TABLE transactions ADD COLUMN categories TEXT;
                    """)
        }
        try migrator.migrate(pool)
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    public func installProgramme(_ program: Program, catalogue: Catalogue, now: Timestamp) async throws -> Bool {
        let written = try await pool.write { db -> Written? in
            let installed =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM entities WHERE scope = '*' AND kind = 'program'") ?? 0
            guard installed == 0 else { return nil }
            let entities: [Entity] =
                [.program(program)] + catalogue.offers.map(Entity.offer) + catalogue.rewards.map(Entity.reward)
                + catalogue.surveys.map(Entity.survey)
            return try Self.writeEntities(entities, member: nil, now: now, db: db)
        }
        written?.tell(cache, member: nil)
        return written != nil
    }
}
