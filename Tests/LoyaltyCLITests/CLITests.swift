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

    static func locate() -> URL? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL.deletingLastPathComponent(),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
                .appendingPathComponent(".build/debug"),
        ]
        return candidates.map { $0.appendingPathComponent("loyalty") }.first {
            FileManager.default.isExecutableFile(atPath: $0.path)
        }
    }

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
func withLiveServer(_ body: @escaping @Sendable (URL, String) async throws -> Void) async throws {
    try await TestServer.make().live { url in try await body(url, TestServer.adminToken) }
}

@Suite struct CLIParsingTests {
    @Test func commandsParseWithTheirOptions() throws {
        #expect(
            try LoyaltyCLI.parseAsRoot(LoyaltyCLI.normalize(["--device", "/tmp/x", "--json", "balance"])) is Balance)
        #expect(
            LoyaltyCLI.normalize(["--json", "--device", "d", "offer", "redeem", "x"]) == [
                "offer", "redeem", "x", "--json", "--device", "d",
            ])
        #expect(try LoyaltyCLI.parseAsRoot(["history", "--limit", "5", "--json"]) is History)
        #expect(try LoyaltyCLI.parseAsRoot(["consent", "set", "marketing-sms", "withdrawn"]) is ConsentCommand.Set)
        #expect(try LoyaltyCLI.parseAsRoot(["profile"]) is ProfileCommand.Show)
        #expect(try LoyaltyCLI.parseAsRoot(["clock", "skew", "+1d"]) is ClockCommand.Skew)
        let negative = try LoyaltyCLI.parseAsRoot(LoyaltyCLI.normalize(["--device", "d", "clock", "skew", "-2h"]))
        #expect((negative as? ClockCommand.Skew)?.skew == "-2h")
        #expect((negative as? ClockCommand.Skew)?.global.device == "d")
        let survey = try LoyaltyCLI.parseAsRoot([
            "survey", "answer", "store-visit", "--answer", "rating=5", "--answer", "store=Hamburg",
        ])
        #expect((survey as? SurveyCommand.Answer)?.answers == ["rating=5", "store=Hamburg"])
    }

    @Test(arguments: [
        ["consent", "set", "marketing-fax", "granted"],
        ["consent", "set", "profiling", "maybe"],
        ["clock", "skew", "soon"],
        ["clock", "skew", "+999999999d"],
        ["network", "sideways"],
        ["profile", "set", "shoe-size", "42"],
        ["history", "--limit", "0"],
        ["survey", "answer", "store-visit"],
        ["admin", "purchase", "--server", "http://x", "--token", "t", "--amount", "5"],
        ["admin", "redeem", "--server", "http://x", "--token", "t", "--member", "m-1", "--points", "0"],
        ["admin", "redeem", "--server", "http://x", "--token", "t", "--points", "5"],
        ["enroll", "--server", "not a url", "--name", "A", "--email", "a@b.de", "--password", "correct horse"],
        ["frobnicate"],
    ])
    func badArgumentsAreUsageErrors(arguments: [String]) {
        do {
            var command = try LoyaltyCLI.parseAsRoot(arguments)
            try command.validate()
            if let enroll = command as? Enroll { _ = try serverURL(enroll.server) }
            Issue.record("accepted \(arguments)")
        } catch {
            #expect(LoyaltyCLI.exitCode(for: error) != .success)
        }
    }

    @Test func theDeviceDirectoryDefaultsToTheEnvironmentThenHome() throws {
        let options = try GlobalOptions.parse(["--device", "/tmp/phone"])
        #expect(options.deviceDirectory.path == "/tmp/phone")
        let defaulted = try GlobalOptions.parse([])
        let expected =
            ProcessInfo.processInfo.environment["LOYALTY_DEVICE"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".loyalty/device").path
        #expect(defaulted.deviceDirectory.path == URL(fileURLWithPath: expected).path)
    }
}

@Suite struct CLIEndToEndTests {
    let cli: CLI
    let root: URL

    init() throws {
        cli = CLI(binary: try #require(CLI.locate(), "build the package first (swift build)"), environment: [:])
        root = FileManager.default.temporaryDirectory.appendingPathComponent("loyalty-cli-devices-\(UUID().uuidString)")
    }

    func device(_ name: String) -> String { root.appendingPathComponent(name).path }

    @Test func twoDevicesGoThroughAnOfflineConflictAndAgree() async throws {
        let cli = self.cli
        let phone = device("phone")
        let tablet = device("tablet")
        try await withLiveServer { server, token in
            let enrolled = try await cli(
                "--device", phone, "--json", "enroll", "--server", server.absoluteString, "--name", "Anna Schmidt",
                "--email", "anna@example.de", "--password", "correct horse")
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
            let member = try #require(enrolled.json["member"] as? String)
            #expect(
                try await cli(
                    "--device", tablet, "login", "--server", server.absoluteString, "--email", "anna@example.de",
                    "--password", "correct horse"
                ).status == 0)

            let credit = try await cli(
                "admin", "purchase", "--server", server.absoluteString, "--token", token, "--member", member,
                "--amount", "1000.00", "--json")
            #expect(credit.status == 0)
            #expect(credit.json["points"] as? Int == 1000)
            #expect(
                try await cli("admin", "clock", "advance", "15d", "--server", server.absoluteString, "--token", token)
                    .status == 0)
            #expect(
                try await cli("admin", "job", "unlock", "--server", server.absoluteString, "--token", token).status == 0
            )
            for device in [phone, tablet] { #expect(try await cli("--device", device, "sync").status == 0) }

            for device in [phone, tablet] { #expect(try await cli("--device", device, "network", "off").status == 0) }
            for device in [phone, tablet] {
                #expect(try await cli("--device", device, "offer", "activate", "welcome-10").status == 0)
                #expect(try await cli("--device", device, "offer", "redeem", "welcome-10").status == 0)
            }
            let offline = try await cli("--device", phone, "--json", "sync")
            #expect(offline.status == 1)
            #expect(offline.errorCode == "offline")
            let queued = try await cli("--device", phone, "--json", "status")
            #expect(queued.json["pending"] as? Int == 2)
            #expect(queued.json["online"] as? Bool == false)

            for device in [phone, tablet] { #expect(try await cli("--device", device, "network", "on").status == 0) }
            let first = try await cli("--device", phone, "--json", "sync")
            #expect(first.json["applied"] as? Int == 2)
            let second = try await cli("--device", tablet, "--json", "sync")
            #expect(second.json["rejected"] as? Int == 1)
            let notices =
                try await cli("--device", tablet, "--json", "notices").json["notices"] as? [[String: Any]] ?? []
            #expect(notices.count == 1)
            #expect((notices.first?["message"] as? String)?.contains("already redeemed") == true)
            #expect(notices.first?["kind"] as? String == "rejected")

            _ = try await cli("--device", phone, "sync")
            for device in [phone, tablet] {
                let offers =
                    try await cli("--device", device, "--json", "offers").json["offers"] as? [[String: Any]] ?? []
                #expect(offers.first { $0["id"] as? String == "welcome-10" }?["state"] as? String == "redeemed")
                let balance = try await cli("--device", device, "--json", "balance").json
                #expect(balance["available"] as? Int == 1000)
                #expect(balance["pending"] as? Int == 0)
                #expect(balance["allowance"] as? Int == 250, "half the balance, split across the two devices")
                #expect(try await cli("--device", device, "--json", "status").json["pending"] as? Int == 0)
            }
            let card = try await cli("--device", phone, "--json", "card").json
            #expect((card["number"] as? String)?.count == 13)
            #expect(card["status"] as? String == "active")
            let history =
                try await cli("--device", phone, "--json", "history", "--limit", "5").json["entries"]
                as? [[String: Any]] ?? []
            #expect(history.contains { $0["kind"] as? String == "earn" && $0["amount"] as? Int == 1000 })

            // The till pays with points, but not with the 500 reserved for the two devices.
            let tooMuch = try await cli(
                "admin", "redeem", "--server", server.absoluteString, "--token", token, "--member", member,
                "--points", "600", "--json")
            #expect(tooMuch.status == 1)
            #expect(tooMuch.stderr.contains("500") || tooMuch.stdout.contains("500"), "\(tooMuch.stderr)")
            let paid = try await cli(
                "admin", "redeem", "--server", server.absoluteString, "--token", token, "--member", member,
                "--points", "400", "--json")
            #expect(paid.status == 0, "\(paid.stderr)")
            #expect(paid.json["points"] as? Int == -400)
        }
    }

    @Test func profileConsentsAndSurveysWorkOfflineAndShowTheDocumentedKeys() async throws {
        let cli = self.cli
        let phone = device("phone")
        try await withLiveServer { server, _ in
            _ = try await cli(
                "--device", phone, "enroll", "--server", server.absoluteString, "--name", "Jonas", "--email",
                "jonas@example.de", "--password", "correct horse")
            _ = try await cli("--device", phone, "network", "off")
            #expect(try await cli("--device", phone, "profile", "set", "address", "Hauptstraße 5, Hamburg").status == 0)
            #expect(try await cli("--device", phone, "consent", "set", "marketing-email", "granted").status == 0)
            #expect(
                try await cli(
                    "--device", phone, "survey", "answer", "store-visit", "--answer", "rating=4", "--answer",
                    "store=Hamburg"
                ).status == 0)
            let profile = try await cli("--device", phone, "--json", "profile").json
            #expect(Set(profile.keys) == ["name", "email", "phone", "birthdate", "address"])
            #expect(profile["address"] as? String == "Hauptstraße 5, Hamburg")
            let consents =
                try await cli("--device", phone, "--json", "consents").json["consents"] as? [[String: Any]] ?? []
            #expect(consents.first { $0["kind"] as? String == "marketing-email" }?["granted"] as? Bool == true)
            _ = try await cli("--device", phone, "network", "on")
            let synced = try await cli("--device", phone, "--json", "sync").json
            #expect(synced["applied"] as? Int == 3)
            #expect(
                try await cli("--device", phone, "--json", "balance").json["available"] as? Int == 50, "the survey paid"
            )
        }
    }

    @Test func badInputGivesTheDocumentedErrorAndExitCode() async throws {
        let cli = self.cli
        let phone = device("phone")
        try await withLiveServer { server, token in
            _ = try await cli(
                "--device", phone, "enroll", "--server", server.absoluteString, "--name", "Leyla", "--email",
                "leyla@example.de", "--password", "correct horse")
            let unknownOffer = try await cli("--device", phone, "--json", "offer", "redeem", "no-such-offer")
            #expect(unknownOffer.status == 1)
            #expect(unknownOffer.errorCode == "offer_not_found")
            #expect(try await cli("--device", phone, "--json", "status").json["pending"] as? Int == 0, "nothing queued")

            let overdraw = try await cli("--device", phone, "--json", "reward", "redeem", "voucher-20")
            #expect(overdraw.errorCode == "insufficient_points")

            let malformed = try await cli(
                "admin", "purchase", "--server", server.absoluteString, "--token", token, "--member", "m-x", "--amount",
                "12.345", "--json")
            #expect(malformed.status == 1)
            #expect((malformed.json["error"] as? [String: Any])?["message"] as? String ?? "" != "")

            let usage = try await cli("--device", phone, "consent", "set", "marketing-fax", "granted")
            #expect(usage.status == 2)
            #expect(usage.stderr.contains("marketing-email"))

            let wrongToken = try await cli(
                "admin", "member", "list", "--server", server.absoluteString, "--token", "not-the-token", "--json")
            #expect(wrongToken.status == 1)
            #expect(wrongToken.errorCode == "unauthorized")
        }
        let unreachable = try await cli("--device", phone, "--json", "sync")
        #expect(unreachable.status == 1, "the server is gone")
        #expect(unreachable.errorCode == "offline")
        let noServer = try await cli(
            "admin", "member", "list", "--server", "http://127.0.0.1:9", "--token", "whatever", "--json")
        #expect(noServer.status == 1)
        #expect(noServer.errorCode == "unreachable")
    }

    @Test func aCorruptDeviceDirectoryIsReportedAndLeftAlone() async throws {
        let directory = root.appendingPathComponent("corrupt")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("device.sqlite")
        let garbage = Data(repeating: 0x5A, count: 8192)
        try garbage.write(to: file)
        let run = try await cli("--device", directory.path, "--json", "balance")
        #expect(run.status == 1)
        #expect(run.errorCode == "device_store")
        #expect(run.stderr.contains(file.path))
        #expect(try Data(contentsOf: file) == garbage)
    }

    @Test func aDeviceThatNeverSignedInSaysSo() async throws {
        let run = try await cli("--device", device("fresh"), "--json", "balance")
        #expect(run.status == 1)
        #expect(run.errorCode == "not_signed_in")
    }

    @Test func theDemoTellsItsStoryAndEndsInAgreement() async throws {
        let run = try await cli("demo", "--json")
        #expect(run.status == 0, "\(run.stderr)")
        let document = run.json
        #expect(document["agree"] as? Bool == true)
        #expect((document["steps"] as? [Any])?.count == 9)
        let final = document["final"] as? [String: [String: String]] ?? [:]
        #expect(final["available points"]?["server"] == "300")
        #expect(final["phone number"]?["phone"] == "+49 30 2222222")
    }

    @Test func theDemoCanKeepItsDirectoriesForExploring() async throws {
        let keep = root.appendingPathComponent("kept")
        #expect(try await cli("demo", "--keep", keep.path, "--json").status == 0)
        let balance = try await cli("--device", keep.appendingPathComponent("phone").path, "--json", "balance")
        #expect(balance.json["available"] as? Int == 300)
        #expect(FileManager.default.fileExists(atPath: keep.appendingPathComponent("server/loyalty.sqlite").path))
    }
}

/// Commands parsed and executed in-process, checked through the device store they change.
@Suite struct CLIInProcessTests {
    @Test func memberActionsRunInProcessAndQueueOffline() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-inprocess-\(UUID().uuidString)")
        try await withLiveServer { server, _ in
            func run(_ arguments: [String]) async throws {
                var command = try LoyaltyCLI.parseAsRoot(
                    LoyaltyCLI.normalize(["--device", directory.path, "--json"] + arguments))
                if var asyncCommand = command as? any AsyncParsableCommand {
                    try await asyncCommand.run()
                } else {
                    try command.run()
                }
            }
            try await run([
                "enroll", "--server", server.absoluteString, "--name", "Anna", "--email", "inproc@example.de",
                "--password", "correct horse",
            ])
            try await run(["network", "off"])
            try await run(["clock", "skew", "-2h"])
            try await run(["offer", "activate", "welcome-10"])
            try await run(["profile", "set", "phone", "+49 30 5555555"])
            try await run(["consent", "set", "profiling", "granted"])
            try await run(["survey", "answer", "store-visit", "--answer", "rating=3", "--answer", "store=München"])
            await #expect(throws: LoyaltyError.self) { try await run(["sync"]) }

            let context = try DeviceContext(directory: directory)
            #expect(!context.isOnline)
            #expect(context.skew == .hours(-2))
            let pending = try context.store.pendingMutations()
            #expect(
                pending.map(\.envelope.mutation.kind) == [
                    "activateOffer", "setProfileField", "setConsent", "answerSurvey",
                ])
            #expect(pending.map(\.envelope.sequence) == [1, 2, 3, 4])
            #expect(context.store.view?.profileValue(.phone) == "+49 30 5555555")

            try await run(["network", "on"])
            try await run(["sync"])
            let reopened = try DeviceContext(directory: directory)  // as the next command would
            #expect(try reopened.store.status().pending == 0)
            #expect(reopened.store.confirmed?.consents.isGranted(.profiling) == true)
            #expect(reopened.store.confirmed?.profileValue(.phone) == "+49 30 5555555")
            await #expect(throws: LoyaltyError.self) { try await run(["offer", "redeem", "no-such-offer"]) }
            try await run(["logout"])
            #expect(try context.store.identity() == nil)
        }
    }
}

/// A real `loyalty` process killed with SIGKILL while it records mutations: the outbox it leaves is whole.
@Suite struct CLIDurabilityTests {
    @Test func killingTheProcessMidWriteLosesNothingItAcknowledgedAndRepeatsNoSequenceNumber() async throws {
        let binary = try #require(CLI.locate())
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-kill-\(UUID().uuidString)")
        let phone = directory.appendingPathComponent("phone").path
        try await withLiveServer { server, _ in
            let cli = CLI(binary: binary, environment: [:])
            try await Self.enrolOffline(cli, device: phone, server: server, email: "kill@example.de")

            // A shell records consents in a loop, printing each acknowledged one; it is killed mid-loop.
            let log = directory.appendingPathComponent("acknowledged.log")
            let script = """
                for i in $(seq 1 200); do
                  "\(binary.path)" --device "\(phone)" consent set profiling granted >/dev/null 2>&1 && echo "$i" >> "\(log.path)"
                done
                """
            // In a process group of its own (setsid execs the shell in place: its pid is the group's id), so that the
            // loop and the child it is running are ended together by that id, and nothing else is.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
            process.arguments = ["/bin/sh", "-c", script]
            try process.run()
            // Kill it once it is well under way (a few mutations acknowledged), whatever the machine's load.
            for _ in 0..<600 {
                let done = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n").count ?? 0
                if done >= 5 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            kill(-process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try await Task.sleep(for: .milliseconds(200))

            let acknowledged = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n").count ?? 0
            let store = try DeviceStore(path: phone + "/device.sqlite")
            let sequences = try store.pendingMutations().map(\.envelope.sequence)
            #expect(acknowledged > 0, "the loop ran")
            #expect(sequences == (0..<sequences.count).map { UInt64($0 + 1) }, "contiguous from 1, no repeats")
            #expect(sequences.count >= acknowledged, "every acknowledged mutation is in the outbox")
            #expect(sequences.count <= acknowledged + 1, "at most the one being written when killed")

            #expect(try await cli("--device", phone, "network", "on").status == 0)
            let synced = try await cli("--device", phone, "--json", "sync")
            #expect(synced.status == 0)
            #expect(synced.json["applied"] as? Int == sequences.count)
        }
    }

    /// C14: the real `loyalty` process is killed in the middle of a push (the server commits after the client
    /// died) and in the middle of a paged pull; restarted from its directory, it loses nothing, repeats nothing,
    /// and its next sync completes with the device equal to the server.
    @Test func c14KillingTheProcessMidPushAndMidPullLosesNothingAndAppliesNothingTwice() async throws {
        let binary = try #require(CLI.locate())
        let throttle = Throttle()
        let harness = try await TestServer.make(
            configure: { $0.maxPageSize = 2 }, storage: { ThrottledStorage(base: $0, throttle: throttle) })
        let phone = harness.directory.appendingPathComponent("phone").path
        try await harness.live { server in
            let cli = CLI(binary: binary, environment: [:])
            try await Self.enrolOffline(cli, device: phone, server: server, email: "c14@example.de")
            for consent in ["profiling", "marketing-email", "marketing-sms"] {
                #expect(try await cli("--device", phone, "consent", "set", consent, "granted").status == 0)
            }
            #expect(try await cli("--device", phone, "network", "on").status == 0)
            let (memberID, deviceID) = try Self.inspect(phone) { store throws in
                let identity = try #require(try store.identity())
                #expect(try store.pendingMutations().count == 3)
                return (identity.memberID, identity.deviceID)
            }

            // Mid-push: the server holds the push; the client is killed while it waits for the answer.
            throttle.set(.push, .seconds(2))
            let pushing = try Self.start(binary, "--device", phone, "sync")
            #expect(await Self.next(throttle) == .push)
            Self.killHard(pushing)
            throttle.set(.push, nil)
            for _ in 0..<100 where try await harness.service.storage.device(deviceID)?.lastSequence != 3 {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await harness.service.storage.device(deviceID)?.lastSequence == 3, "the server committed")
            try Self.inspect(phone) { store throws in
                #expect(try store.pendingMutations().map(\.result) == [nil, nil, nil], "the answer never arrived")
            }

            // Mid-pull: the operator publishes offers, so the next pull takes several pages of two; the client is
            // killed while the third page is on its way.
            for index in 0..<8 {
                _ = try await harness.service.createOffer(
                    Offer(
                        id: OfferID("c14-\(index)"), title: "Offer \(index)", validFrom: .init(Date()), validUntil: nil)
                )
            }
            throttle.set(.pull, .seconds(2))
            let pulling = try Self.start(binary, "--device", phone, "sync")
            for _ in 0..<3 { #expect(await Self.next(throttle) == .pull) }
            Self.killHard(pulling)
            throttle.set(.pull, nil)
            try Self.inspect(phone) { store throws in
                #expect(try store.status().cursor.version > 0, "pages before the kill were applied")
                #expect(store.confirmed?.offers["c14-7"] == nil, "the pull had not finished")
            }

            // Restarted from its directory, the next sync completes.
            let synced = try await cli("--device", phone, "--json", "sync")
            #expect(synced.status == 0, "\(synced.stderr)")
            let server = try await harness.state(of: memberID)
            #expect(server.consents.changes.count == 3, "each consent applied once")
            #expect(try await harness.service.storage.device(deviceID)?.lastSequence == 3)
            try Self.inspect(phone) { store throws in
                #expect(store.confirmed == server, "the device's confirmed state equals the server's")
                #expect(try store.status().pending == 0, "no pending mutation lost or left")
                #expect(try store.notices().filter { $0.kind == .rejected }.isEmpty)
                let history = try store.history(limit: 1000)
                #expect(Set(history.map(\.id)).count == history.count)
            }
        }
    }

    /// The next held call, or nil after 60 s (a client that never reaches the server fails the test, not CI).
    static func next(_ throttle: Throttle) async -> Throttle.Call? {
        await withTaskGroup(of: Throttle.Call?.self) { group in
            group.addTask {
                var calls = throttle.entered.makeAsyncIterator()
                return await calls.next()
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(60))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Enrols a member on the device through the binary, then takes the device offline.
    static func enrolOffline(_ cli: CLI, device: String, server: URL, email: String) async throws {
        #expect(
            try await cli(
                "--device", device, "enroll", "--server", server.absoluteString, "--name", "K", "--email", email,
                "--password", "correct horse"
            ).status == 0)
        #expect(try await cli("--device", device, "network", "off").status == 0)
    }

    /// Opens the device's store (as the next process would) for a look, and closes it.
    static func inspect<T>(_ device: String, _ body: (DeviceStore) throws -> T) throws -> T {
        try body(try DeviceStore(path: device + "/device.sqlite"))
    }

    /// Starts the binary without waiting for it.
    static func start(_ binary: URL, _ arguments: String...) throws -> Process {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// SIGKILL: no cleanup, no flush, as when the phone's OS kills the app.
    static func killHard(_ process: Process) {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
