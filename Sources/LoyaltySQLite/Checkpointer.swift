internal import Dispatch
internal import GRDB
internal import Synchronization

/// Copies the write-ahead log back into the database file on a connection of its own, beside the writer, after
/// every commit it is told of.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold, and everything behind that
/// commit waits (the figures are in docs/benchmarks.md). A passive checkpoint never blocks the writer or readers.
///
/// The log starts over from its beginning only when a write transaction begins with every frame in it copied back,
/// which never happens on its own while the writer goes from one transaction straight to the next. So once the
/// log is long, the writer waits between two transactions for the checkpoint of its last commit (one commit's
/// pages, a few milliseconds) and its next transaction starts the log again (``waitIfTheLogIsLong()``). The
/// writer's own automatic checkpoint stays, at a higher threshold set by the owner of the connection, in case this
/// one falls behind (a reader holding an old snapshot stops the log from being copied back whole).
package final class Checkpointer: Sendable {
    /// Frames (pages) in the log past which the writer lets the checkpointer catch up: 32 MiB of 4 KiB pages.
    package static let restartFrames = 8_192
    /// Pages in the log after which the server's writer checkpoints itself inside a commit (SQLite's default is
    /// 1,000).
    package static let writerThreshold = 32_768
    /// The longest the writer waits for the checkpointer between two transactions.
    static let longestWait = DispatchTimeInterval.milliseconds(200)

    private struct State {
        /// Commits so far.
        var commits = 0
        var running = false
        var again = false
        var done = 0
        /// Commits that the last finished checkpoint started after (all of them copied back unless a reader held
        /// the log).
        var covered = 0
        /// Frames in the log when the last checkpoint ended, if it copied all of them back; nil otherwise.
        var wholeLog: Int?
        /// Times the writer let the log start over.
        var restarts = 0
        var restartFrames = Checkpointer.restartFrames
        var waiter: (commits: Int, signal: DispatchSemaphore)?
    }

    private let connection: DatabaseQueue
    private let state = Mutex(State())

    package init(path: String) throws {
        var configuration = Configuration()
        configuration.label = "checkpointer"
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Checkpoints run so far.
    package var checkpoints: Int { state.withLock { $0.done } }

    /// Times the writer let the log start over (waiting for the checkpointer first if it had not caught up).
    package var restarts: Int { state.withLock { $0.restarts } }

    /// Sets the log length past which the writer lets the checkpointer catch up (tests use a short one).
    package func restart(after frames: Int) { state.withLock { $0.restartFrames = frames } }

    /// Called after each commit: starts a checkpoint of it (one at a time: a commit while one runs makes it
    /// run once more, for every commit since).
    package func committed() {
        let start = state.withLock { state -> Bool in
            state.commits += 1
            guard !state.running else {
                state.again = true
                return false
            }
            state.running = true
            return true
        }
        if start { run() }
    }

    /// Called by the writer between two transactions: when the last checkpoint found a log longer than the restart
    /// threshold and copied all of it back, waits (at most ``longestWait``) until the checkpoint of the latest
    /// commit has ended, so that the next transaction starts the log from its beginning.
    package func waitIfTheLogIsLong() {
        let signal = state.withLock { state -> DispatchSemaphore? in
            guard let frames = state.wholeLog, frames >= state.restartFrames else { return nil }
            state.wholeLog = nil
            state.restarts += 1
            // A checkpoint of every commit so far runs or is asked for (``committed()``), unless one has ended.
            guard state.covered < state.commits else { return nil }
            let signal = DispatchSemaphore(value: 0)
            state.waiter = (state.commits, signal)
            return signal
        }
        guard let signal else { return }
        _ = signal.wait(timeout: .now() + Self.longestWait)
        state.withLock { $0.waiter = nil }
    }

    private func run() {
        connection.asyncWriteWithoutTransaction { db in
            // Every commit counted here has ended, so the checkpoint below sees its frames.
            let commits = self.state.withLock { $0.commits }
            // A failed checkpoint loses nothing (the log keeps every page); the next one, or the writer's, copies it.
            let log = try? db.checkpoint(.passive)
            let again = self.state.withLock { state -> Bool in
                state.done += 1
                state.covered = commits
                state.wholeLog = log.flatMap { $0.checkpointedFrameCount == $0.walFrameCount ? $0.walFrameCount : nil }
                if let waiter = state.waiter, commits >= waiter.commits {
                    waiter.signal.signal()
                    state.waiter = nil
                }
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
