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
    @Test(arguments: StorageBackend.all)
    func c14KillingTheProcessMidPushAndMidPullLosesNothingAndAppliesNothingTwice(backend: StorageBackend) async throws {
        let binary = try #require(CLI.locate())
        let throttle = Throttle()
        let harness = try await TestServer.make(
            backend, configure: { $0.maxPageSize = 2 }, storage: { ThrottledStorage(base: $0, throttle: throttle) })
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
