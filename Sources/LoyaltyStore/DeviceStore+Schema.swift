internal import Foundation
internal import GRDB
internal import LoyaltyCore

// The device store's schema and its migrations.
extension DeviceStore {
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: confirmed state and outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        identity BLOB,
                        cursor INTEGER NOT NULL DEFAULT 0,
                        last_processed INTEGER NOT NULL DEFAULT 0,
                        next_sequence INTEGER NOT NULL DEFAULT 1 CHECK (next_sequence >= 1),
                        hlc INTEGER NOT NULL DEFAULT 0,
                        clock_offset INTEGER NOT NULL DEFAULT 0,
                        clock_uncertainty INTEGER NOT NULL DEFAULT 0,
                        last_sync_at INTEGER,
                        last_error TEXT,
                        condition TEXT NOT NULL DEFAULT 'signedOut');
                    INSERT INTO device (id) VALUES (1);
                    CREATE TABLE confirmed (
                        kind TEXT NOT NULL,
                        id TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        PRIMARY KEY (kind, id));
                    CREATE TABLE ledger_entries (
                        id TEXT PRIMARY KEY NOT NULL,
                        at INTEGER NOT NULL,
                        version INTEGER NOT NULL,
                        body BLOB NOT NULL);
                    CREATE INDEX ledger_entries_by_time ON ledger_entries(at DESC, id);
                    CREATE TABLE outbox (
                        sequence INTEGER PRIMARY KEY NOT NULL CHECK (sequence >= 1),
                        envelope BLOB NOT NULL,
                        created_at INTEGER NOT NULL,
                        result BLOB);
                    """)
        }
        migrator.registerMigration("v2: notices") { db in
            try db.execute(
                sql: """
                    CREATE TABLE notices (
                        id TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL,
                        message TEXT NOT NULL,
                        sequence INTEGER,
                        mutation_kind TEXT,
                        created_at INTEGER NOT NULL,
                        read INTEGER NOT NULL DEFAULT 0);
                    CREATE INDEX notices_by_time ON notices(created_at DESC);
                    """)
        }
        migrator.registerMigration("v3: allowances") { db in
            try db.execute(
                sql: """
                    ALTER TABLE outbox ADD COLUMN guaranteed INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE device ADD COLUMN releasing_grant INTEGER;
                    ALTER TABLE device ADD COLUMN releasing_through INTEGER;
                    """)
        }
        return migrator
    }()

}
