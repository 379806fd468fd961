public import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Starting a child process with posix_spawn, its output discarded. Foundation's `Process` was seen never to return
/// from `waitUntilExit` for `pg_ctl start` (which leaves the server running in the background), so the tests' and
/// the benchmarks' own children are started and waited for by this.
public enum Spawn {
    /// Starts `executable` with `arguments`; its pid, or an error naming the executable.
    public static func start(_ executable: String, _ arguments: [String]) throws -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
        guard spawned == 0 else {
            throw LoyaltyServerTestSetupError("cannot run \(executable): \(String(cString: strerror(spawned)))")
        }
        return pid
    }

    /// Runs `executable` to its end; its exit status (128 + the signal if a signal ended it).
    public static func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let pid = try start(executable, arguments)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return exitStatus(status)
    }

    /// The exit status in a `waitpid` status.
    public static func exitStatus(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
