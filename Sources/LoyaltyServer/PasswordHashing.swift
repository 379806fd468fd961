internal import Crypto
internal import Foundation
internal import _CryptoExtras

/// scrypt's cost parameters, stored beside each hash (`scrypt$17$8$1`) so that the cost can be raised without
/// breaking the accounts hashed before: a hash is verified with its own parameters and redone with the current
/// ones at the next successful sign-in.
public struct ScryptParameters: Hashable, Sendable, CustomStringConvertible {
    /// log2 of N, the CPU and memory cost (memory is 128 × r × N bytes: 128 MiB at 17).
    public var logN: Int
    /// The block size.
    public var r: Int
    /// The parallelism.
    public var p: Int

    /// Parameters; `logN` 1...20.
    public init(logN: Int, r: Int = 8, p: Int = 1) {
        self.logN = logN
        self.r = r
        self.p = p
    }

    /// What hashes made before parameters were recorded used.
    public static let legacy = ScryptParameters(logN: 14)

    /// The stored form.
    public var description: String { "scrypt$\(logN)$\(r)$\(p)" }

    /// Reads the stored form.
    public init?(_ text: String) {
        let parts = text.split(separator: "$")
        guard parts.count == 4, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]),
            let p = Int(parts[3]), (1...24).contains(logN), (1...32).contains(r), (1...16).contains(p)
        else { return nil }
        self.init(logN: logN, r: r, p: p)
    }
}

/// Slow, salted password hashing with scrypt.
public enum PasswordHasher {
    /// A fresh random salt.
    public static func salt() -> [UInt8] { SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) } }

    /// The hash of a password with a salt.
    public static func hash(_ password: String, salt: [UInt8], parameters: ScryptParameters) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << parameters.logN,
            blockSize: parameters.r, parallelism: parameters.p)
        return key.withUnsafeBytes { Array($0) }
    }

    /// Whether a password matches a stored hash, compared in constant time.
    public static func verify(
        _ password: String, hash: [UInt8], salt: [UInt8], parameters: ScryptParameters
    ) throws -> Bool {
        constantTimeEqual(try self.hash(password, salt: salt, parameters: parameters), hash)
    }
}

/// Runs password hashing on threads of its own, never on the cooperative pool that answers pushes and pulls nor
/// on Dispatch's shared threads (which the store's reads use), with a bounded queue: when `capacity` hashes are
/// waiting or running, the next sign-in is answered 503 with `Retry-After` instead of queueing without end. The
/// threads end when the workers are let go of.
final class PasswordWorkers: Sendable {
    private let queue: JobQueue

    /// `threads` hashes at a time, at most `capacity` admitted (running or waiting).
    init(threads: Int, capacity: Int) {
        queue = JobQueue(capacity: max(capacity, 1))
        for index in 0..<max(threads, 1) {
            let queue = self.queue
            let thread = Thread { queue.work() }
            thread.name = "loyalty-passwords-\(index)"
            thread.start()
        }
    }

    deinit { queue.stop() }

    /// How many hashes ran to the end (a sign-in for an unknown e-mail runs one too).
    var completed: Int { queue.completed }

    /// Runs `job` on a hashing thread once one is free.
    func run<T: Sendable>(_ job: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let queue = self.queue
            let admitted = queue.add {
                let result = Result { try job() }
                queue.finish()  // counted before the caller goes on
                continuation.resume(with: result)
            }
            if !admitted {
                var busy = APIFailure(.unavailable, "too many sign-ins at once: try again in a moment")
                busy.retryAfterSeconds = 1
                continuation.resume(throwing: busy)
            }
        }
    }
}

/// The hashing threads' queue: jobs waiting, jobs admitted, and whether to stop; every field guarded by `condition`.
private final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var waiting: [@Sendable () -> Void] = []
    private var admitted = 0
    private var finished = 0
    private var stopping = false
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var completed: Int {
        condition.lock()
        defer { condition.unlock() }
        return finished
    }

    /// Queues a job; false when `capacity` are admitted already.
    func add(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard admitted < capacity, !stopping else { return false }
        admitted += 1
        waiting.append(job)
        condition.signal()
        return true
    }

    /// Counts a job done and lets another in.
    func finish() {
        condition.lock()
        admitted -= 1
        finished += 1
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// A thread's loop: runs jobs until stopped (the jobs already queued run first).
    func work() {
        while true {
            condition.lock()
            while waiting.isEmpty && !stopping { condition.wait() }
            guard !waiting.isEmpty else {
                condition.unlock()
                return
            }
            let job = waiting.removeFirst()
            condition.unlock()
            job()
        }
    }
}
