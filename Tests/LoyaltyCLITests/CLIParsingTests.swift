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
