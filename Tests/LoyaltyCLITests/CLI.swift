import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyStore
import LoyaltyTesting
import Testing

@testable import LoyaltyCLI
@testable import LoyaltyServer

/// Runs the built `loyalty` binary.
struct CLI {
    let binary: URL
    let environment: [String: String]

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
        }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    static func locate() -> URL? { BuiltExecutable.locate("loyalty") }

    /// Runs the binary with these arguments.
    func callAsFunction(_ arguments: String...) async throws -> Run { try await run(arguments) }

    /// Runs the binary on a thread of its own: blocking a cooperative thread would starve the in-process server.
    /// `input` is written to its standard input.
    func run(_ arguments: [String], input: String? = nil) async throws -> Run {
        let binary = self.binary
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        for (key, value) in self.environment { environment[key] = value }
        let finalEnvironment = environment
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    let process = Process()
                    process.executableURL = binary
                    process.arguments = arguments
                    process.environment = finalEnvironment
                    let out = Pipe()
                    let err = Pipe()
                    process.standardOutput = out
                    process.standardError = err
                    let stdin = Pipe()
                    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
                    try process.run()
                    if let input {
                        stdin.fileHandleForWriting.write(Data(input.utf8))
                        try stdin.fileHandleForWriting.close()
                    }
                    let stdout = out.fileHandleForReading.readDataToEndOfFile()
                    let stderr = err.fileHandleForReading.readDataToEndOfFile()
                    process.waitUntilExit()
                    continuation.resume(
                        returning: Run(
                            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                            stderr: String(decoding: stderr, as: UTF8.self)))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}

/// A live server with a test clock, for the binary to talk to.
func withLiveServer(
    _ backend: StorageBackend = .sqlite, _ body: @escaping @Sendable (URL, String) async throws -> Void
) async throws {
    try await TestServer.make(backend).live { url in try await body(url, TestServer.adminToken) }
}
