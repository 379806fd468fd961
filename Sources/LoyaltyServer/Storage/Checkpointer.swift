internal import Dispatch
internal import GRDB
internal import Synchronization

/// Copies the write-ahead log back into the database file on a connection of its own, beside the writer. SQLite's
/// automatic checkpoint runs inside the commit that crosses its threshold: under ingest every fourth group commit
/// took 40 to 50 ms instead of 2 to 3 (docs/benchmarks.md), while every push of the next group waited. A passive
/// checkpoint never blocks the writer or the readers; the writer's own automatic checkpoint stays, at a far higher
/// threshold, in case this one falls behind.
final class Checkpointer: Sendable {
    /// Group commits between two checkpoints.
    static let interval = 4
    /// Pages in the log after which the writer checkpoints itself (SQLite's default is 1,000).
    static let writerThreshold = 16_000

    private struct State {
        var commits = 0
        var running = false
        var again = false
        var done = 0
    }

    private let connection: DatabaseQueue
    private let state = Mutex(State())

    init(path: String) throws {
        var configuration = Configuration()
        configuration.label = "checkpointer"
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Checkpoints run so far.
    var checkpoints: Int { state.withLock { $0.done } }

    /// Called after each group commit; starts a checkpoint every ``interval`` commits (one at a time: a request
    /// while one runs makes it run once more).
    func committed() {
        let start = state.withLock { state -> Bool in
            state.commits += 1
            guard state.commits >= Self.interval else { return false }
            state.commits = 0
            guard !state.running else {
                state.again = true
                return false
            }
            state.running = true
            return true
        }
        if start { run() }
    }

    private func run() {
        connection.asyncWriteWithoutTransaction { db in
            // A failed checkpoint loses nothing (the log keeps every page); the next one, or the writer's, copies it.
            _ = try? db.checkpoint(.passive)
            let again = self.state.withLock { state -> Bool in
                state.done += 1
                if state.again {
                    state.again = false
                    return true
                }
                state.running = false
                return false
            }
            if again { self.run() }
        }
    }
}
