internal import Foundation
internal import LoyaltyCore

/// The pid of the demo's child server while it runs, for the interrupt handler (which can capture nothing).
nonisolated(unsafe) private var interruptedChild: Int32 = 0

/// A `loyalty-server` run as a child process, for `loyalty demo`: the client links no part of the server.
///
/// The executable is `LOYALTY_SERVER_BINARY` if set, else the one beside `loyalty`, else the first on `PATH`.
/// When `loyalty` runs from a SwiftPM build folder (`swift run loyalty demo`) and the server is not built yet, it
/// is built there first with `swift build --product loyalty-server`.
final class ServerProcess {
    let url: URL
    private let process: Process

    private init(url: URL, process: Process) {
        self.url = url
        self.process = process
    }

    /// Starts a server on a free loopback port with its data in `directory` and `operatorToken` for the admin API
    /// (passed in a private file, never on the command line), and waits until it accepts connections.
    static func start(data directory: URL, operatorToken: String, narrate: (String) -> Void) throws -> ServerProcess {
        let binary = try locate(narrate: narrate)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokenFile = directory.appendingPathComponent("operator.token")
        guard
            FileManager.default.createFile(
                atPath: tokenFile.path, contents: Data((operatorToken + "\n").utf8),
                attributes: [.posixPermissions: 0o600])
        else {
            throw LoyaltyError("server", "cannot write the demo server's operator token to \(tokenFile.path)")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "serve", "--port", "0", "--data", directory.path, "--admin-token-file", tokenFile.path,
            "--log-level", "error", "--job-interval", "1h",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        endChildOnInterrupt(process.processIdentifier)
        // The server prints `listening on http://HOST:PORT` once it accepts connections.
        var printed = Data()
        while let line = String(data: printed, encoding: .utf8), !line.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed.append(chunk)
        }
        let line = String(decoding: printed, as: UTF8.self)
        guard let range = line.range(of: "listening on "),
            let url = URL(string: String(line[range.upperBound...].prefix { !$0.isNewline }))
        else {
            process.terminate()
            process.waitUntilExit()
            throw LoyaltyError(
                "server", "\(binary.path) did not start (it printed \(line.isEmpty ? "nothing" : line)).")
        }
        return ServerProcess(url: url, process: process)
    }

    /// Ends the server this started (by its pid: SIGTERM, which it answers by finishing requests in flight).
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        interruptedChild = 0
    }

    /// Ctrl-C or SIGTERM during the demo ends the child server too (by its pid), instead of leaving it running.
    private static func endChildOnInterrupt(_ pid: Int32) {
        interruptedChild = pid
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { received in
                if interruptedChild > 0 { kill(interruptedChild, SIGTERM) }
                _exit(128 + received)
            }
        }
    }

    /// Where the `loyalty-server` executable is, building it first when `loyalty` runs from a SwiftPM build folder.
    static func locate(narrate: (String) -> Void) throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["LOYALTY_SERVER_BINARY"] {
            guard FileManager.default.isExecutableFile(atPath: given) else {
                throw LoyaltyError("server", "LOYALTY_SERVER_BINARY is \(given), which is not an executable file.")
            }
            return URL(fileURLWithPath: given)
        }
        let ownFolder = ownExecutable().deletingLastPathComponent()
        let beside = ownFolder.appendingPathComponent("loyalty-server")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        for folder in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent("loyalty-server")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        // `swift run loyalty demo` on a fresh clone: the binary is in `<package>/.build/<triple>/<configuration>`.
        let components = ownFolder.resolvingSymlinksInPath().pathComponents
        if let build = components.lastIndex(of: ".build") {
            let package = URL(fileURLWithPath: "/" + components[1..<build].joined(separator: "/"))
            let configuration = components.last == "release" ? "release" : "debug"
            narrate("Building loyalty-server for the demo (once; \(configuration)) in \(package.path) ...")
            let swift = Process()
            swift.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            swift.arguments = ["swift", "build", "--product", "loyalty-server", "--configuration", configuration]
            swift.currentDirectoryURL = package
            swift.standardOutput = FileHandle.standardError
            try swift.run()
            swift.waitUntilExit()
            if swift.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        }
        throw LoyaltyError(
            "server",
            "The demo needs the loyalty-server executable and found none beside \(ownFolder.path) or on PATH. "
                + "Build it (swift build --product loyalty-server), set LOYALTY_SERVER_BINARY, or give --server.")
    }

    /// This process's executable, symbolic links resolved.
    private static func ownExecutable() -> URL {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    }
}
