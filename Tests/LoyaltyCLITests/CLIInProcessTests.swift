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
