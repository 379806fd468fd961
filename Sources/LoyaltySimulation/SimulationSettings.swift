public import Foundation
public import LoyaltyServer

/// The simulator's settings.
public struct SimulationSettings: Sendable {
    /// Steps per run.
    public var steps = 300
    /// A bug to plant in the server (the self-test).
    public var plantedBug: PlantedBug?
    /// Where runs keep their SQLite files (a tmpfs if there is one).
    public var directory: URL
    /// A PostgreSQL cluster (a user that may create databases) to keep the server's data in instead of SQLite: each
    /// run gets a database of its own. The database's timing is not deterministic; the invariants must hold anyway.
    public var postgres: DatabaseURL?

    /// Settings with `steps` per run, a bug to plant if any, and the runs' folder (default: /dev/shm when writable).
    public init(steps: Int = 300, plantedBug: PlantedBug? = nil, directory: URL? = nil) {
        self.steps = steps
        self.plantedBug = plantedBug
        let shm = URL(fileURLWithPath: "/dev/shm")
        self.directory =
            directory
            ?? (FileManager.default.isWritableFile(atPath: shm.path) ? shm : FileManager.default.temporaryDirectory)
    }
}
