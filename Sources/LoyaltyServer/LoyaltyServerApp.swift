public import Foundation
public import Hummingbird
internal import HummingbirdCore
internal import HummingbirdTLS
public import Logging
internal import LoyaltyAPI
public import LoyaltyCore
internal import LoyaltySQLite
internal import NIOSSL
internal import OpenAPIHummingbird
internal import ServiceLifecycle
internal import Synchronization
internal import UnixSignals

/// Everything `loyalty-server serve` is started with.
public struct ServerSettings: Sendable {
    /// Address to listen on.
    public var host: String
    /// Port to listen on; 0 picks a free one.
    public var port: Int
    /// Where the database and the signing key live.
    public var dataDirectory: URL
    /// Whether the operator may set and advance the server's clock.
    public var testClock: Bool
    /// Limits and policies.
    public var configuration: ServerConfiguration
    /// The programme a new store starts with.
    public var program: Program
    /// The catalogue a new store starts with.
    public var catalogue: Catalogue
    /// Whether the unlock, expiry and compaction jobs run on a schedule.
    public var schedulesJobs: Bool
    /// A certificate chain and its private key (PEM files) to serve HTTPS directly, without a proxy in front.
    public var tls: (certificateChain: String, privateKey: String)?
    /// The PostgreSQL database to keep everything in (several instances may share it); nil keeps the SQLite store in
    /// ``dataDirectory``.
    public var database: DatabaseURL?
    /// Connections this instance opens to the database at most.
    public var databaseConnections = 20
    /// The instance's name on its metrics (`instance_name`); several instances on one database need different ones.
    public var instanceName = ServerSettings.defaultInstanceName

    /// The host's name and the process id: unique among instances on one machine and across machines.
    public static var defaultInstanceName: String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Settings with the embedded default programme.
    public init(
        host: String = "127.0.0.1", port: Int = 8080, dataDirectory: URL, testClock: Bool = false,
        configuration: ServerConfiguration = ServerConfiguration(), schedulesJobs: Bool = true
    ) throws {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.testClock = testClock
        self.configuration = configuration
        self.program = try Program.decode(json: Data(DefaultProgramme.programJSON.utf8))
        self.catalogue = try Catalogue.decode(json: Data(DefaultProgramme.catalogueJSON.utf8))
        self.schedulesJobs = schedulesJobs
    }
}

/// Builds the server: the store in the data directory, the sync service, the HTTP routes and the scheduled jobs.
public enum LoyaltyServerApp {
    /// Opens the SQLite store in the data directory (creating the directory on first start) and prepares the sync
    /// service.
    public static func makeService(settings: ServerSettings, logger: Logger) async throws -> SyncService {
        let (storage, tokens) = try embeddedStore(in: settings.dataDirectory)
        return try await makeService(settings: settings, storage: storage, tokens: tokens, logger: logger)
    }

    /// The SQLite store and the signing key in a data directory, created on first use.
    public static func embeddedStore(in directory: URL) throws -> (SQLiteStorage, TokenAuthority) {
        try PrivateFiles.createDirectory(at: directory)
        return (
            try SQLiteStorage(path: directory.appendingPathComponent("loyalty.sqlite").path),
            try TokenAuthority.load(in: directory)
        )
    }

    /// Prepares the sync service on a store (migrated, the programme installed if the store has none).
    public static func makeService(
        settings: ServerSettings, storage: any ServerStorage, tokens: TokenAuthority, logger: Logger
    ) async throws -> SyncService {
        let clock: any ServerClock = settings.testClock ? TestClock() : SystemClock()
        let service = SyncService(
            storage: storage, clock: clock, configuration: settings.configuration, tokens: tokens, logger: logger,
            metrics: ServerMetrics(instanceName: settings.instanceName))
        try await service.prepare(program: settings.program, catalogue: settings.catalogue)
        return service
    }

    /// The HTTP application for a service. `onListening` is called with the bound port once it is listening.
    public static func application(
        service: SyncService, settings: ServerSettings, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router(context: LoyaltyRequestContext.self)
        router.add(middleware: RequestIDMiddleware(logger: logger))
        router.add(middleware: ClientAddressMiddleware())
        router.add(middleware: BodyLimitMiddleware(maxBodyBytes: settings.configuration.maxBodyBytes))
        let handler = APIHandler(service: service, metrics: service.metrics)
        router.add(middleware: MethodNotAllowedMiddleware(routes: try ContractRoutes(of: handler)))
        try handler.registerHandlers(
            on: router, serverURL: URL(string: "/")!, configuration: .loyalty,
            middlewares: [
                FailureMiddleware(logger: logger, metrics: service.metrics),
                GateMiddleware(service: service, configuration: settings.configuration),
                SyncResponder(service: service),
            ])
        var services: [any Service] = []
        if settings.schedulesJobs {
            services.append(
                JobScheduler(service: service, interval: settings.configuration.jobInterval, logger: logger))
        }
        let limits = settings.configuration
        // A connection that sends nothing for the idle timeout (headers never finished, a body left half-sent,
        // a kept-alive connection unused) is closed; beyond the cap, new connections wait to be accepted.
        var server = HTTPServerBuilder.http1(
            configuration: .init(idleTimeout: .milliseconds(limits.idleTimeout.milliseconds)))
        if let tls = settings.tls { server = try .tls(server, tlsConfiguration: try Self.tlsConfiguration(tls)) }
        return Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(settings.host, port: settings.port), serverName: "loyalty-server",
                availableConnectionsDelegate: .maximum(limits.maximumConnections, logger: logger)),
            services: services,
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? settings.port) },
            logger: logger)
    }
}

extension LoyaltyServerApp {
    /// The server's TLS configuration from PEM files, or an error naming the file that is not usable.
    static func tlsConfiguration(
        _ files: (certificateChain: String, privateKey: String)
    ) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain)
        } catch {
            throw APIFailure(.internalError, "\(files.certificateChain) is not a PEM certificate chain: \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw APIFailure(.internalError, "\(files.privateKey) is not a PEM private key")
        }
        guard !chain.isEmpty else { throw APIFailure(.internalError, "\(files.certificateChain) holds no certificate") }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// Opens the store, builds the application and runs it until SIGTERM or SIGINT, then shuts down gracefully.
    ///
    /// On PostgreSQL the connection pool is a service of the group the application runs in: it starts first (the
    /// schema is migrated and the signing keys read through it) and stops last, after the server drained.
    public static func serve(
        settings: ServerSettings, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void
    ) async throws {
        guard let url = settings.database else {
            let service = try await makeService(settings: settings, logger: logger)
            let app = try application(service: service, settings: settings, logger: logger, onListening: onListening)
            try await app.runService()
            return
        }
        let storage = PostgresStorage(url: url, connections: settings.databaseConnections, logger: logger)
        let server = ServerOnStorage {
            logger.info("opening the database", metadata: ["database": "\(url)"])
            try await storage.migrate()
            let service = try await makeService(
                settings: settings, storage: storage, tokens: try await storage.tokenAuthority(), logger: logger)
            try await application(service: service, settings: settings, logger: logger, onListening: onListening)
                .run()
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: storage.client),
                    .init(
                        service: server, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if let failure = server.failure { throw failure }
    }
}

/// The application on a store that must run first (PostgreSQL's pool): prepares the service, then serves until
/// graceful shutdown. A failure to start (a database that cannot be reached) ends the group and is rethrown.
final class ServerOnStorage: Service, Sendable {
    let body: @Sendable () async throws -> Void
    private let failed = Mutex<(any Error)?>(nil)

    init(body: @escaping @Sendable () async throws -> Void) {
        self.body = body
    }

    var failure: (any Error)? { failed.withLock { $0 } }

    func run() async throws {
        do {
            try await body()
        } catch {
            let described = LoyaltyError(
                .unusableStore, "the server could not start on the database: \(PostgresStorage.describe(error))",
                cause: error)
            failed.withLock { $0 = described }
            throw described
        }
    }
}

/// Runs the unlock and expiry jobs and compacts the feed on a schedule; stops at graceful shutdown.
struct JobScheduler: Service {
    let service: SyncService
    let interval: TimeSpan
    let logger: Logger

    func run() async throws {
        // Graceful shutdown cancels the sleep; that is how this service ends, not a failure.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(interval.milliseconds))
                do {
                    _ = try await service.run(.unlock)
                    _ = try await service.run(.expire)
                    _ = try await service.run(.segment)
                    try await service.compactFeed()
                } catch {
                    logger.error("scheduled jobs failed; they run again next time", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
