internal import GRDB
internal import LoyaltySQLite
internal import Synchronization

/// Units of work on members that wait for SQLite's one writer are committed together: the writer takes every unit
/// that is waiting (up to ``limit``), runs each in a savepoint of its own inside one transaction, and commits once.
/// A unit that fails rolls back its savepoint alone and the others go on; a commit that fails fails every unit of
/// its group, none of which is then answered as done. Callers are answered only after the commit, so a result is
/// never reported before it is on disk, while the fsync and the rewriting of the hot pages (the feed's version,
/// the index's last leaf) are paid once per group instead of once per unit.
final class GroupCommitter: Sendable {
    /// The most units one transaction takes: it bounds how long the first of them waits for the commit.
    static let limit = 128

    private struct Queue {
        var waiting: [any GroupedUnit] = []
        var draining = false
        var commits = 0
        var units = 0
    }

    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    /// Members' states as the last committed unit of work left them, with the feed versions they reflect: a unit
    /// whose member and catalogue versions are unchanged starts from the copy instead of decoding every entity.
    /// Versions, not invalidation, make it safe: any write to the member's or the catalogue's entities (from this
    /// process or another) raises a version and the copy is ignored. The states a group leaves are kept only once
    /// it is committed.
    let states = Mutex(StateCache())

    let checkpointer: Checkpointer?
    /// Told what each committed unit wrote, before its caller is answered.
    let cache: RequestCache

    init(pool: DatabasePool, checkpointer: Checkpointer?, cache: RequestCache) {
        self.pool = pool
        self.checkpointer = checkpointer
        self.cache = cache
    }

    /// Group commits so far and the units they carried.
    var statistics: CommitStatistics {
        queue.withLock { CommitStatistics(commits: $0.commits, units: $0.units) }
    }

    /// Units waiting for the writer (for tests that need a group to form).
    var waiting: Int {
        queue.withLock { $0.waiting.count }
    }

    /// Queues a unit; the first unit to find the writer idle starts draining the queue.
    func submit(_ unit: any GroupedUnit) {
        let start = queue.withLock { queue -> Bool in
            queue.waiting.append(unit)
            guard !queue.draining else { return false }
            queue.draining = true
            return true
        }
        if start { pool.asyncWriteWithoutTransaction { db in self.drain(db) } }
    }

    /// The most groups committed in one turn of the writer before other writes waiting for it get theirs.
    private static let groupsPerTurn = 8

    /// Commits groups on the writer's own thread until the queue is empty, so that the writer does not wait for a
    /// thread of the concurrency pool between groups.
    private func drain(_ db: Database) {
        for _ in 0..<Self.groupsPerTurn {
            let group = queue.withLock { queue -> [any GroupedUnit] in
                let taken = Array(queue.waiting.prefix(Self.limit))
                queue.waiting.removeFirst(taken.count)
                if taken.isEmpty {
                    queue.draining = false
                } else {
                    queue.commits += 1
                    queue.units += taken.count
                }
                return taken
            }
            guard !group.isEmpty else { return }
            var left = StateCache()
            let outcome: Result<Void, any Error>
            do {
                try db.inTransaction {
                    for unit in group { try unit.run(db, states: &left) }
                    return .commit
                }
                states.withLock { $0.keep(all: left) }
                for unit in group { unit.tell(cache) }
                checkpointer?.committed()
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            for unit in group { unit.finish(committed: outcome) }
            checkpointer?.waitIfTheLogIsLong()
        }
        // Still draining: the rest waits behind the writes that queued meanwhile.
        pool.asyncWriteWithoutTransaction { db in self.drain(db) }
    }
}

/// One unit of work in a group commit.
protocol GroupedUnit: AnyObject, Sendable {
    /// Runs in the group's transaction, in a savepoint of its own, and keeps its outcome. `states` holds the member
    /// states that the units before it in the group left. Throws only when the transaction itself is lost (SQLite
    /// rolled it back), which fails the whole group.
    func run(_ db: Database, states: inout StateCache) throws
    /// Tells the cache what the unit wrote, once its group is committed.
    func tell(_ cache: RequestCache)
    /// Answers the caller once the group is committed or has failed as a whole.
    func finish(committed: Result<Void, any Error>)
}
