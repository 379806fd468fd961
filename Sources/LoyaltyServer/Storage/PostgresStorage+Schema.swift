internal import Crypto
internal import Foundation
public import LoyaltyCore
internal import PostgresNIO

// The schema in named, ordered migrations, the programme a new database starts with, and the signing keys.
extension PostgresStorage {
    /// A named step of the schema. Steps run in order, each once, all under one advisory lock.
    struct Migration {
        let name: String
        let statements: [String]
    }

    /// The advisory lock (two keys: the application's, the purpose's) held while migrating.
    static let migrationLock = (application: Int32(0x4C4F_5941), purpose: Int32(1))

    /// Every step of the schema, oldest first. Never edit a step that has shipped: add one.
    static let migrations: [Migration] = [
        Migration(
            name: "v1: accounts, devices, feed, receipts, transactions, keys",
            statements: [
                // Feed versions of member entities and of the catalogue come from one sequence (docs/architecture.md
                // says why a pull cannot skip one committed late).
                "CREATE SEQUENCE feed_version AS bigint MINVALUE 1",
                "CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL)",
                "INSERT INTO meta (key, value) VALUES ('horizon', 0)",
                """
                CREATE TABLE signing_keys (
                    slot text PRIMARY KEY CHECK (slot IN ('current', 'previous')),
                    key bytea NOT NULL CHECK (length(key) = 32))
                """,
                """
                CREATE TABLE accounts (
                    member_id text PRIMARY KEY,
                    email text NOT NULL,
                    password_hash bytea NOT NULL,
                    salt bytea NOT NULL,
                    password_params text,
                    created_at bigint NOT NULL,
                    sign_in_blocked boolean NOT NULL DEFAULT false,
                    unlock_due bigint,
                    expire_due bigint)
                """,
                "CREATE UNIQUE INDEX accounts_email ON accounts (lower(email))",
                // When the jobs next have work for a member (kept with every write): a run reads only who is due.
                "CREATE INDEX accounts_unlock_due ON accounts (unlock_due) WHERE unlock_due IS NOT NULL",
                "CREATE INDEX accounts_expire_due ON accounts (expire_due) WHERE expire_due IS NOT NULL",
                """
                CREATE TABLE devices (
                    id text NOT NULL,
                    member_id text NOT NULL REFERENCES accounts (member_id),
                    name text NOT NULL,
                    created_at bigint NOT NULL,
                    revoked_at bigint,
                    revoked_reason text,
                    last_sequence bigint NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
                    last_acted_at bigint,
                    last_seen_at bigint,
                    last_pulled_at bigint,
                    refresh_hash bytea NOT NULL,
                    previous_refresh_hash bytea,
                    rotated_at bigint,
                    superseded_refresh bytea,
                    refresh_retries integer NOT NULL DEFAULT 0,
                    PRIMARY KEY (member_id, id))
                """,
                // Device ids are random (60 bits); a request names its device, a refresh token only the device.
                "CREATE UNIQUE INDEX devices_id ON devices (id)",
                """
                CREATE TABLE mutation_results (
                    member_id text NOT NULL,
                    device_id text NOT NULL,
                    sequence bigint NOT NULL CHECK (sequence > 0),
                    result bytea NOT NULL,
                    processed_at bigint NOT NULL,
                    PRIMARY KEY (member_id, device_id, sequence),
                    FOREIGN KEY (member_id, device_id) REFERENCES devices (member_id, id))
                """,
                "CREATE INDEX mutation_results_age ON mutation_results (processed_at)",
                // A member's entities; bodies are the exact bytes the feed sends (bytea: jsonb would reorder keys).
                """
                CREATE TABLE entities (
                    member_id text NOT NULL REFERENCES accounts (member_id),
                    kind text NOT NULL,
                    id text NOT NULL,
                    version bigint NOT NULL UNIQUE,
                    body bytea,
                    updated_at bigint NOT NULL,
                    PRIMARY KEY (member_id, kind, id))
                """,
                "CREATE INDEX entities_feed ON entities (member_id, version)",
                "CREATE INDEX entities_deleted ON entities (updated_at) WHERE body IS NULL",
                // The programme-wide entities (programme, offers, rewards, surveys), in every member's feed.
                """
                CREATE TABLE catalogue (
                    kind text NOT NULL,
                    id text NOT NULL,
                    version bigint NOT NULL UNIQUE,
                    body bytea,
                    updated_at bigint NOT NULL,
                    PRIMARY KEY (kind, id))
                """,
                "CREATE INDEX catalogue_deleted ON catalogue (updated_at) WHERE body IS NULL",
                """
                CREATE TABLE cards (
                    number text PRIMARY KEY,
                    member_id text NOT NULL REFERENCES accounts (member_id))
                """,
                "CREATE INDEX cards_by_member ON cards (member_id)",
                """
                CREATE TABLE receipts (
                    code text PRIMARY KEY,
                    amount bigint NOT NULL CHECK (amount >= 0),
                    shop text NOT NULL,
                    purchased_at bigint NOT NULL,
                    claimed_by text REFERENCES accounts (member_id),
                    lot_id text)
                """,
                """
                CREATE TABLE transactions (
                    id text PRIMARY KEY,
                    kind text NOT NULL CHECK (kind IN ('purchase', 'return', 'redemption')),
                    member_id text NOT NULL REFERENCES accounts (member_id),
                    lot_id text,
                    receipt_code text)
                """,
            ]),
        Migration(
            name: "v2: a unit of work's lock and first read in one call",
            statements: [
                // The member's lock, then (in a statement of its own, so with a snapshot taken after the lock was
                // granted: a VOLATILE function's statements each take a fresh one under READ COMMITTED) the newest
                // versions of the member's entities and of the catalogue, and the device's row. One round trip.
                """
                CREATE FUNCTION loyalty_unit_head(p_member text, p_device text)
                RETURNS TABLE (
                    member_version bigint, catalogue_version bigint, d_id text, d_member_id text, d_name text,
                    d_created_at bigint, d_revoked_at bigint, d_revoked_reason text, d_last_sequence bigint,
                    d_last_acted_at bigint, d_last_seen_at bigint, d_last_pulled_at bigint, d_refresh_hash bytea,
                    d_previous_refresh_hash bytea, d_rotated_at bigint, d_superseded_refresh bytea,
                    d_refresh_retries integer)
                LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock(\(memberLockSpace), hashtext(p_member));
                    RETURN QUERY
                    SELECT (SELECT coalesce(max(e.version), 0) FROM entities e WHERE e.member_id = p_member),
                        (SELECT coalesce(max(c.version), 0) FROM catalogue c),
                        d.id, d.member_id, d.name, d.created_at, d.revoked_at, d.revoked_reason, d.last_sequence,
                        d.last_acted_at, d.last_seen_at, d.last_pulled_at, d.refresh_hash, d.previous_refresh_hash,
                        d.rotated_at, d.superseded_refresh, d.refresh_retries
                    FROM (SELECT 1) AS one LEFT JOIN devices d ON d.member_id = p_member AND d.id = p_device;
                END
                $$
                """,
                // A page of a member's feed after a cursor, in one statement (and so one round trip, in a transaction
                // of its own): the shared locks of the member and of the catalogue, when `p_wait` (a test turns them
                // off), then, each statement with a snapshot taken after they were granted, a first row with the
                // heads (f_kind NULL, f_version the newest version taken, f_horizon the compaction's horizon) and the
                // row of the device `p_device` if it is the member's (NULLs if not), then up to `p_limit` + 1 changes
                // in version order.
                """
                CREATE FUNCTION loyalty_feed(
                    p_member text, p_device text, p_after bigint, p_limit integer, p_wait boolean)
                RETURNS TABLE (
                    f_kind text, f_id text, f_version bigint, f_body bytea, f_horizon bigint, d_id text,
                    d_member_id text, d_name text, d_created_at bigint, d_revoked_at bigint, d_revoked_reason text,
                    d_last_sequence bigint, d_last_acted_at bigint, d_last_seen_at bigint, d_last_pulled_at bigint,
                    d_refresh_hash bytea, d_previous_refresh_hash bytea, d_rotated_at bigint, d_superseded_refresh bytea,
                    d_refresh_retries integer)
                LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    IF p_wait THEN
                        PERFORM pg_advisory_xact_lock_shared(\(memberLockSpace), hashtext(p_member)),
                            pg_advisory_xact_lock_shared(\(catalogueLock.space), \(catalogueLock.key));
                    END IF;
                    RETURN QUERY SELECT NULL::text, NULL::text, (SELECT s.last_value FROM feed_version s), NULL::bytea,
                        (SELECT m.value FROM meta m WHERE m.key = 'horizon'),
                        d.id, d.member_id, d.name, d.created_at, d.revoked_at, d.revoked_reason, d.last_sequence,
                        d.last_acted_at, d.last_seen_at, d.last_pulled_at, d.refresh_hash, d.previous_refresh_hash,
                        d.rotated_at, d.superseded_refresh, d.refresh_retries
                    FROM (SELECT 1) AS one LEFT JOIN devices d ON d.member_id = p_member AND d.id = p_device;
                    RETURN QUERY SELECT c.kind, c.id, c.version, c.body, NULL::bigint, NULL::text, NULL::text,
                        NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint,
                        NULL::bigint, NULL::bytea, NULL::bytea, NULL::bigint, NULL::bytea, NULL::integer
                    FROM (
                        (SELECT e.kind, e.id, e.version, e.body FROM entities e
                         WHERE e.member_id = p_member AND e.version > p_after ORDER BY e.version LIMIT p_limit + 1)
                        UNION ALL
                        (SELECT g.kind, g.id, g.version, g.body FROM catalogue g
                         WHERE g.version > p_after ORDER BY g.version LIMIT p_limit + 1)
                    ) AS c ORDER BY c.version LIMIT p_limit + 1;
                END
                $$
                """,
            ]),
        Migration(
            name: "v3: the segment job's analyses and the segments",
            statements: [
                """
                CREATE TABLE member_analysis (
                    member_id text PRIMARY KEY REFERENCES accounts (member_id),
                    due_at bigint,
                    body bytea NOT NULL)
                """,
                "CREATE INDEX member_analysis_due ON member_analysis (due_at) WHERE due_at IS NOT NULL",
                "CREATE TABLE segments (name text PRIMARY KEY, body bytea NOT NULL)",
            ]),
        Migration(
            name: "v4: the programme's sums and each member's contribution to them",
            statements: [
                "ALTER TABLE member_analysis ADD COLUMN contribution bytea",
                """
                CREATE TABLE programme_figures (
                    period text NOT NULL, measure text NOT NULL, value bigint NOT NULL, PRIMARY KEY (period, measure))
                """,
                // The members analysed before have no contribution yet: the next run of the segment job visits all.
                "INSERT INTO segments (name, body) VALUES ('#full-run-due', '{}'::bytea) ON CONFLICT DO NOTHING",
            ]),
        Migration(
            name: "v5: the till's shop and basket categories",
            statements: [
                "ALTER TABLE transactions ADD COLUMN shop text", "ALTER TABLE transactions ADD COLUMN categories text",
            ]),
    ]

    public func migrate() async throws { try await applyMigrations() }

    /// Applies the migrations the database has not had, in order, under the advisory lock; returns their names.
    @discardableResult
    public func applyMigrations() async throws -> [String] {
        let applied = try await transaction { connection in
            // Two instances starting together: the second waits here, then finds the steps applied.
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(Self.migrationLock.application), \(Self.migrationLock.purpose))",
                logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)",
                logger: self.logger)
            var done = Set<String>()
            for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: self.logger)
                .decode(String.self)
            {
                done.insert(name)
            }
            var applied: [String] = []
            for migration in Self.migrations where !done.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (\(migration.name), now())",
                    logger: self.logger)
                applied.append(migration.name)
            }
            return applied
        }
        for name in applied { logger.notice("database migrated", metadata: ["migration": "\(name)"]) }
        return applied
    }

    /// Creates a database on this server (for tests and tools: a lowercase letter or `_` first, then lowercase
    /// letters, digits or `_`).
    public func createDatabase(named name: String) async throws {
        guard let first = name.first, first == "_" || first.isLowercase,
            name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLowercase || $0.isNumber)) }), name.count <= 63
        else { throw LoyaltyError(.invalidInput, "\(name.quoted) is not a database name this tool makes") }
        try await leased { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: self.logger)
        }
    }

    /// Runs statements as given, in one transaction (for tools and benchmarks that prepare tables of their own; never
    /// with text from a request).
    public func runScript(_ statements: [String]) async throws {
        try await transaction { connection in
            for statement in statements {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
            }
        }
    }

    /// Each table's primary key columns, in order (docs/scaling.md: what distributes by member).
    func primaryKeys() async throws -> [String: [String]] {
        try await leased { connection in
            var keys: [String: [String]] = [:]
            for try await (table, column) in try await connection.query(
                """
                SELECT c.relname, a.attname
                FROM pg_index i
                JOIN pg_class c ON c.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                WHERE i.indisprimary
                ORDER BY c.relname, k.position
                """, logger: self.logger
            ).decode((String, String).self) {
                keys[table, default: []].append(column)
            }
            return keys
        }
    }

    public func ping() async throws {
        _ = try await leased { connection in try await connection.query("SELECT 1", logger: self.logger) }
    }

    public func installProgramme(_ program: Program, catalogue: Catalogue, now: Timestamp) async throws -> Bool {
        let entities: [Entity] =
            [.program(program)] + catalogue.offers.map(Entity.offer) + catalogue.rewards.map(Entity.reward)
            + catalogue.surveys.map(Entity.survey)
        let rows = try entities.map { entity in (entity.key, try entity.payloadJSON()) }
        return try await transaction { connection in
            try await Self.lockCatalogue(connection, logger: self.logger)
            let installed =
                try await connection.query(
                    "SELECT count(*) FROM catalogue WHERE kind = 'program'", logger: self.logger
                ).collect().first?.decode(Int64.self) ?? 0
            guard installed == 0 else { return false }
            try await Self.writeCatalogue(rows, now: now, connection: connection, logger: self.logger)
            return true
        }
    }

    /// The token authority of every instance on this database: the signing keys live in it (made on first use), so
    /// that a token one instance signed verifies on the others.
    public func tokenAuthority(accessLifetime: TimeSpan = .minutes(15)) async throws -> TokenAuthority {
        let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let keys = try await transaction { connection in
            try await connection.query(
                "INSERT INTO signing_keys (slot, key) VALUES ('current', \(fresh)) ON CONFLICT (slot) DO NOTHING",
                logger: self.logger)
            var keys: [String: Data] = [:]
            for try await (slot, key) in try await connection.query(
                "SELECT slot, key FROM signing_keys", logger: self.logger
            ).decode((String, Data).self) {
                keys[slot] = key
            }
            return keys
        }
        guard let current = keys["current"] else {
            throw LoyaltyError(.unusableStore, "the database \(url) holds no signing key")
        }
        return TokenAuthority(
            key: SymmetricKey(data: current), previous: keys["previous"].map { SymmetricKey(data: $0) },
            accessLifetime: accessLifetime)
    }

    /// Makes a new signing key; the current one becomes the previous one (verifying the tokens it signed until they
    /// expire). Every instance reads the keys when it starts: restart them all after rotating.
    public func rotateSigningKey() async throws {
        let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        try await transaction { connection in
            try await connection.query("DELETE FROM signing_keys WHERE slot = 'previous'", logger: self.logger)
            try await connection.query(
                "UPDATE signing_keys SET slot = 'previous' WHERE slot = 'current'", logger: self.logger)
            try await connection.query(
                "INSERT INTO signing_keys (slot, key) VALUES ('current', \(fresh))", logger: self.logger)
        }
    }
}
